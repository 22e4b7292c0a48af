// Package crypt encrypts walhook's secrets at rest and makes and hashes API tokens.
//
// Secrets (OAuth client secrets, codes and tokens, webhook signing secrets, secret header values)
// are sealed with AES-256-GCM. A sealed value carries the id of the key that sealed it, so a
// Keyring can hold the current key and older ones: new values are sealed with the current key, old
// ones still open, and a rotation re-seals rows at leisure. Every value is sealed with associated
// data naming what it is (for example "webhook.signing_secret"), so a ciphertext copied into
// another column does not open.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Sealed layout: version(1) | len(keyID)(1) | keyID | nonce(12) | ciphertext+tag.
const sealVersion = 1

// ErrUnknownKey is returned when a value was sealed with a key the keyring does not hold.
var ErrUnknownKey = errors.New("crypt: value sealed with a key not in the keyring")

// ErrCorrupt is returned when a sealed value cannot be opened.
var ErrCorrupt = errors.New("crypt: sealed value is corrupt or was sealed for another purpose")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Keyring holds the encryption keys by id; Current seals.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

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

// NewKeyring returns a keyring with one key.
func NewKeyring(id string, key []byte) (*Keyring, error) {
	if !keyIDPattern.MatchString(id) {
		return nil, fmt.Errorf("crypt: bad key id %q", id)
	}
	k := &Keyring{current: id, aeads: map[string]cipher.AEAD{}}
	return k, k.add(id, key)
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

// Seal encrypts plaintext for purpose with the current key.
func (k *Keyring) Seal(plaintext []byte, purpose string) []byte {
	aead := k.aeads[k.current]
	out := make([]byte, 0, 2+len(k.current)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, sealVersion, byte(len(k.current)))
	out = append(out, k.current...)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, []byte(purpose))
}

// SealString seals a string; the empty string seals to nil (no value).
func (k *Keyring) SealString(s, purpose string) []byte {
	if s == "" {
		return nil
	}
	return k.Seal([]byte(s), purpose)
}

// Open decrypts a value sealed for purpose.
func (k *Keyring) Open(sealed []byte, purpose string) ([]byte, error) {
	id, rest, err := splitSealed(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// OpenString opens a value sealed with SealString; nil opens to "".
func (k *Keyring) OpenString(sealed []byte, purpose string) (string, error) {
	if sealed == nil {
		return "", nil
	}
	b, err := k.Open(sealed, purpose)
	return string(b), err
}

// KeyID returns the id of the key that sealed a value.
func KeyID(sealed []byte) (string, error) {
	id, _, err := splitSealed(sealed)
	return id, err
}

func splitSealed(sealed []byte) (string, []byte, error) {
	if len(sealed) < 2 || sealed[0] != sealVersion {
		return "", nil, ErrCorrupt
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return "", nil, ErrCorrupt
	}
	return string(sealed[2 : 2+n]), sealed[2+n:], nil
}

// TokenPrefix starts every API token, so leaked tokens are easy to recognise and scan for.
const TokenPrefix = "whk_"

// NewToken returns a new random API token and its hash. Only the hash is stored.
func NewToken() (token string, hash []byte) { return newHashed(TokenPrefix) }

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

// NewSigningSecret returns a new Standard Webhooks signing secret: "whsec_" and 32 random bytes
// in base64.
func NewSigningSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// LoginCodePrefix starts every one-time sign-in code.
const LoginCodePrefix = "whl_"

// NewLoginCode returns a new random one-time sign-in code and its hash; only the hash is stored.
func NewLoginCode() (code string, hash []byte) { return newHashed(LoginCodePrefix) }
