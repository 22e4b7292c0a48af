package xtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

// SealV1 seals plain as walhook did before sealed values were bound to their row (version 1: the
// column's purpose is the whole associated data), with the key of spec (a --encryption-keys
// entry, "id:base64"). It is written out by hand from the layout, so that the tests of upgrading
// such values do not reuse the code they check.
func SealV1(t testing.TB, spec string, plain []byte, purpose string) []byte {
	t.Helper()
	id, b64, _ := strings.Cut(spec, ":")
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("xtest: key of %q: %v", id, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatalf("xtest: cipher: %v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatalf("xtest: gcm: %v", err)
	}
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	out := append([]byte{1, byte(len(id))}, id...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, []byte(purpose))
}
