// Package crypt encrypts walhook's secrets at rest and makes and hashes API tokens.
//
// Secrets (OAuth client secrets, codes and tokens, webhook signing secrets, secret header values)
// are sealed with AES-256-GCM. A sealed value carries the id of the key that sealed it, so a
// Keyring can hold the current key and older ones: new values are sealed with the current key, old
// ones still open, and a rotation re-seals rows at leisure (`walhook keys reseal`).
//
// Every value is sealed with associated data naming the one place it belongs: its table, column,
// company and row (a Binding). A ciphertext copied into another column, another row or another
// company's row — by anyone with write access to the database — does not open there. Version-1
// values, sealed before rows were bound, carried only the column's purpose; they still open
// (Binding.Legacy) until `walhook keys reseal` rewrites them as version 2.
//
// Public ids (ids.go) hide the sequential row ids of deliveries behind a keyed permutation.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Sealed layout: version(1) | len(keyID)(1) | keyID | nonce(12) | ciphertext+tag. Version 1 was
// sealed with the purpose alone as associated data, version 2 with the whole Binding.
const (
	sealV1 = 1
	sealV2 = 2
)

// ErrUnknownKey is returned when a value was sealed with a key the keyring does not hold.
var ErrUnknownKey = errors.New("crypt: value sealed with a key not in the keyring")

// ErrCorrupt is returned when a sealed value cannot be opened: it was changed, or it was sealed for
// another row, company or column (moved there in the database).
var ErrCorrupt = errors.New("crypt: sealed value is corrupt or belongs to another row, company or column")

// Binding names the one place a sealed value belongs. It is the associated data of the seal, so
// the value opens only there.
type Binding struct {
	Table   string // e.g. "webhook"
	Column  string // e.g. "signing_secret_enc"
	Company string // the company owning the row; "" for instance-wide values
	Row     int64  // the row's primary key
	// Legacy is the associated data a version-1 value of this column was sealed with (its
	// purpose, such as "webhook.signing_secret"). Version-1 values open only when it is set;
	// they are bound to the column alone, which is why `walhook keys reseal` rewrites them.
	Legacy string
}

// ad is the associated data of a version-2 seal: each field length-prefixed, so no two bindings
// encode alike.
func (b Binding) ad() []byte {
	out := make([]byte, 0, 16+len(b.Table)+len(b.Column)+len(b.Company)+8)
	out = append(out, "walhook/v2"...)
	for _, f := range []string{b.Table, b.Column, b.Company} {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return binary.BigEndian.AppendUint64(out, uint64(b.Row))
}

func (b Binding) String() string {
	return fmt.Sprintf("%s.%s of row %d (company %q)", b.Table, b.Column, b.Row, b.Company)
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ErrUnbound is returned for a version-1 value when the keyring refuses them (RefuseUnbound).
var ErrUnbound = errors.New("crypt: value sealed before values were bound to their row (version 1), and such values are refused")

// Keyring holds the encryption keys by id; Current seals.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	// refuseV1: version-1 values do not open (RefuseUnbound).
	refuseV1 bool
}

// RefuseUnbound makes the keyring refuse version-1 values, which are bound to their column only.
// Once `walhook keys reseal` has rewritten them all, refusing them means a version-1 value
// copied from an old backup into another row cannot open there either.
func (k *Keyring) RefuseUnbound() { k.refuseV1 = true }

// ParseKeyring parses "id:base64key[,id:base64key…]"; the first key is the current one. Each key
// is 32 bytes (AES-256), in standard or URL base64.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("crypt: key %d: want id:base64key with an id of letters, digits, _ or - (at most 32)", i+1)
		}
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("crypt: key %q: %w", id, err)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("crypt: key id %q given twice", id)
		}
		if err := k.add(id, raw); err != nil {
			return nil, err
		}
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != 32 {
				return nil, fmt.Errorf("want 32 bytes, got %d", len(raw))
			}
			return raw, nil
		}
	}
	return nil, errors.New("not base64")
}

func (k *Keyring) add(id string, key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("crypt: key %q: want 32 bytes, got %d", id, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("crypt: key %q: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("crypt: key %q: %w", id, err)
	}
	k.aeads[id] = aead
	return nil
}

// GenerateKeySpec returns a fresh keyring spec with one random key, for `walhook dev` and tests.
func GenerateKeySpec(id string) string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return id + ":" + base64.StdEncoding.EncodeToString(key)
}

// CurrentKeyID is the id of the key that seals new values.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Seal encrypts plaintext for the place b names, with the current key (version 2).
func (k *Keyring) Seal(plaintext []byte, b Binding) []byte {
	aead := k.aeads[k.current]
	out := make([]byte, 0, 2+len(k.current)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, sealV2, byte(len(k.current)))
	out = append(out, k.current...)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, b.ad())
}

// SealString seals a string; the empty string seals to nil (no value).
func (k *Keyring) SealString(s string, b Binding) []byte {
	if s == "" {
		return nil
	}
	return k.Seal([]byte(s), b)
}

// Open decrypts a value sealed for the place b names: a version-2 value sealed with b, or a
// version-1 value sealed with b.Legacy. A value of another row, company or column is ErrCorrupt.
func (k *Keyring) Open(sealed []byte, b Binding) ([]byte, error) {
	version, id, rest, err := splitSealed(sealed)
	if err != nil {
		return nil, err
	}
	var ad []byte
	switch version {
	case sealV2:
		ad = b.ad()
	case sealV1:
		if k.refuseV1 {
			return nil, ErrUnbound
		}
		if b.Legacy == "" {
			return nil, ErrCorrupt
		}
		ad = []byte(b.Legacy)
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// OpenString opens a value sealed with SealString; nil opens to "".
func (k *Keyring) OpenString(sealed []byte, b Binding) (string, error) {
	if sealed == nil {
		return "", nil
	}
	p, err := k.Open(sealed, b)
	return string(p), err
}

// IsCurrent reports whether a value is sealed the way Seal seals today: version 2, with the
// current key. `walhook keys reseal` leaves such values alone.
func (k *Keyring) IsCurrent(sealed []byte) bool {
	version, id, _, err := splitSealed(sealed)
	return err == nil && version == sealV2 && id == k.current
}

// KeyID returns the id of the key that sealed a value.
func KeyID(sealed []byte) (string, error) {
	_, id, _, err := splitSealed(sealed)
	return id, err
}

func splitSealed(sealed []byte) (byte, string, []byte, error) {
	if len(sealed) < 2 || (sealed[0] != sealV1 && sealed[0] != sealV2) {
		return 0, "", nil, ErrCorrupt
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return 0, "", nil, ErrCorrupt
	}
	return sealed[0], string(sealed[2 : 2+n]), sealed[2+n:], nil
}

// TokenPrefix starts every API token, so leaked tokens are easy to recognise and scan for.
const TokenPrefix = "whk_"

// NewToken returns a new random API token and its hash. Only the hash is stored.
func NewToken() (token string, hash []byte) { return newHashed(TokenPrefix) }

// PlatformTokenPrefix starts every platform token (the host application's, for /v1/platform), so
// it is told from a company token at a glance and by the admin API before any lookup.
const PlatformTokenPrefix = "whp_"

// NewPlatformToken returns a new random platform token and its hash. Only the hash is stored.
func NewPlatformToken() (token string, hash []byte) { return newHashed(PlatformTokenPrefix) }

// newHashed returns prefix and 256 random bits in URL base64, and its hash.
func newHashed(prefix string) (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	s := prefix + base64.RawURLEncoding.EncodeToString(b)
	return s, HashToken(s)
}

// HashToken is the stored form of an API token. Tokens carry 256 random bits, so a plain SHA-256
// is enough; a slow password hash would add nothing but latency to every request.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// LoginCodePrefix starts every one-time sign-in code.
const LoginCodePrefix = "whl_"

// NewLoginCode returns a new random one-time sign-in code and its hash; only the hash is stored.
func NewLoginCode() (code string, hash []byte) { return newHashed(LoginCodePrefix) }
