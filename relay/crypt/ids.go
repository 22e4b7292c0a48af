package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
)

// Public ids.
//
// Deliveries are numbered by one sequence shared by every company, so a row id tells whoever sees
// two of them how many deliveries the whole platform made in between. The API and the Standard
// Webhooks webhook-id header show a public id instead: the row id and a check naming the company
// and the kind of id, encrypted together as one AES block. The permutation needs no column, no
// index and no lookup — an id is computed when shown and reversed when given back — so the
// delivery hot path writes nothing more. Its key never rotates with the encryption keys: it is
// generated once and stored sealed in the database, so ids stay stable across key rotations and
// every replica computes the same ones.

// IDKeySize is the size of the public-id key.
const IDKeySize = 32

// idEncoding is lower-case base32 without padding: 16 bytes are 26 characters that are safe in
// paths, headers and file names.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// idLen is the length of an encoded block.
const idLen = 26

// IDCipher turns internal row ids into opaque public ids and back, and source positions into
// opaque event ids.
type IDCipher struct {
	block  cipher.Block
	check  []byte // HMAC key of the company check
	digest []byte // HMAC key of Digest
	// checks caches checkOf by prefix and company (a few per company): the dispatcher encodes
	// one id per delivery, and the HMAC is most of its cost.
	checks sync.Map
}

// NewIDKey returns a fresh random public-id key.
func NewIDKey() []byte {
	k := make([]byte, IDKeySize)
	_, _ = rand.Read(k)
	return k
}

// NewIDCipher returns the cipher of a public-id key. The block key and the check key are derived
// from it separately.
func NewIDCipher(key []byte) (*IDCipher, error) {
	if len(key) != IDKeySize {
		return nil, fmt.Errorf("crypt: public-id key: want %d bytes, got %d", IDKeySize, len(key))
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("walhook public id block"))
	if err != nil {
		return nil, fmt.Errorf("crypt: public-id key: %w", err)
	}
	return &IDCipher{block: block, check: derive("walhook public id check"), digest: derive("walhook public id digest")}, nil
}

// Digest is a keyed 128-bit digest of s, for ids derived from something guessable: an event's id
// comes from its source position ("outbox:<id>", a WAL position), which an unkeyed hash would let
// anyone recover by trying positions, and with it the platform's volume.
func (c *IDCipher) Digest(s string) [16]byte {
	m := hmac.New(sha256.New, c.digest)
	m.Write([]byte(s))
	var out [16]byte
	copy(out[:], m.Sum(nil))
	return out
}

// checkOf is the 8 bytes that tie a public id to its kind (prefix) and company.
func (c *IDCipher) checkOf(prefix, company string) [8]byte {
	in := string(binary.AppendUvarint(nil, uint64(len(prefix)))) + prefix + company
	if v, ok := c.checks.Load(in); ok {
		return v.([8]byte)
	}
	m := hmac.New(sha256.New, c.check)
	m.Write([]byte(in))
	var out [8]byte
	copy(out[:], m.Sum(nil))
	c.checks.Store(in, out)
	return out
}

// Encode returns the public id of row id of company: prefix and 26 base32 characters. It is the
// same every time for the same arguments.
func (c *IDCipher) Encode(prefix, company string, id int64) string {
	var blk [16]byte
	binary.BigEndian.PutUint64(blk[:8], uint64(id))
	check := c.checkOf(prefix, company)
	copy(blk[8:], check[:])
	c.block.Encrypt(blk[:], blk[:])
	b := make([]byte, 0, len(prefix)+idLen)
	b = append(b, prefix...)
	return string(idEncoding.AppendEncode(b, blk[:]))
}

// Decode returns the row id behind a public id that Encode made for this prefix and company; ok is
// false for anything else — a row id, another company's or another kind's public id, garbage.
func (c *IDCipher) Decode(prefix, company, s string) (id int64, ok bool) {
	rest, found := strings.CutPrefix(s, prefix)
	if !found || len(rest) != idLen {
		return 0, false
	}
	raw, err := idEncoding.DecodeString(rest)
	if err != nil || len(raw) != 16 || idEncoding.EncodeToString(raw) != rest { // canonical only
		return 0, false
	}
	c.block.Decrypt(raw, raw)
	check := c.checkOf(prefix, company)
	if !hmac.Equal(raw[8:], check[:]) {
		return 0, false
	}
	id = int64(binary.BigEndian.Uint64(raw[:8]))
	if id <= 0 {
		return 0, false
	}
	return id, true
}
