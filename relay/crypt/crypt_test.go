package crypt_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/crypt"
)

func TestSealOpenAndRotation(t *testing.T) {
	t.Parallel()
	oldSpec := crypt.GenerateKeySpec("k1")
	old, err := crypt.ParseKeyring(oldSpec)
	require.NoError(t, err)
	sealed := old.Seal([]byte("client-secret"), "oauth.client_secret")
	require.NotContains(t, string(sealed), "client-secret")
	id, err := crypt.KeyID(sealed)
	require.NoError(t, err)
	require.Equal(t, "k1", id)

	plain, err := old.Open(sealed, "oauth.client_secret")
	require.NoError(t, err)
	require.Equal(t, "client-secret", string(plain))
	_, err = old.Open(sealed, "oauth.code")
	require.ErrorIs(t, err, crypt.ErrCorrupt, "a value moved to another column does not open")

	// Rotation: k2 seals, k1 still opens; a keyring without k1 cannot.
	rotated, err := crypt.ParseKeyring(crypt.GenerateKeySpec("k2") + "," + oldSpec)
	require.NoError(t, err)
	require.Equal(t, "k2", rotated.CurrentKeyID())
	plain, err = rotated.Open(sealed, "oauth.client_secret")
	require.NoError(t, err)
	require.Equal(t, "client-secret", string(plain))
	resealed := rotated.Seal(plain, "oauth.client_secret")
	id, _ = crypt.KeyID(resealed)
	require.Equal(t, "k2", id)
	other, err := crypt.ParseKeyring(crypt.GenerateKeySpec("k3"))
	require.NoError(t, err)
	_, err = other.Open(sealed, "oauth.client_secret")
	require.ErrorIs(t, err, crypt.ErrUnknownKey)

	// Tampering is detected; two seals of one value differ (random nonce).
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err = old.Open(tampered, "oauth.client_secret")
	require.ErrorIs(t, err, crypt.ErrCorrupt)
	require.NotEqual(t, sealed, old.Seal([]byte("client-secret"), "oauth.client_secret"))

	// The empty string seals to no value and opens back to "".
	require.Nil(t, old.SealString("", "x"))
	s, err := old.OpenString(nil, "x")
	require.NoError(t, err)
	require.Empty(t, s)
}

func TestParseKeyringErrors(t *testing.T) {
	t.Parallel()
	good := strings.TrimPrefix(crypt.GenerateKeySpec("a"), "a:")
	for spec, want := range map[string]string{
		"":                         "want id:base64key",
		"nocolon":                  "want id:base64key",
		"bad id!:" + good:          "want id:base64key",
		"k:not base64!!":           "not base64",
		"k:AAAA":                   "want 32 bytes",
		"k:" + good + ",k:" + good: "given twice",
	} {
		_, err := crypt.ParseKeyring(spec)
		require.ErrorContains(t, err, want, spec)
	}
}

func TestTokensAndCodes(t *testing.T) {
	t.Parallel()
	tok, hash := crypt.NewToken()
	require.True(t, strings.HasPrefix(tok, crypt.TokenPrefix))
	require.Equal(t, hash, crypt.HashToken(tok))
	code, chash := crypt.NewLoginCode()
	require.True(t, strings.HasPrefix(code, crypt.LoginCodePrefix))
	require.Equal(t, chash, crypt.HashToken(code))
	tok2, _ := crypt.NewToken()
	require.NotEqual(t, tok, tok2)
	require.True(t, strings.HasPrefix(crypt.NewSigningSecret(), "whsec_"))
}

// FuzzParseKeyring: an operator's key spec never panics, and a parsed keyring round-trips.
func FuzzParseKeyring(f *testing.F) {
	f.Add(crypt.GenerateKeySpec("k1"))
	f.Add(crypt.GenerateKeySpec("k1") + "," + crypt.GenerateKeySpec("k0"))
	f.Add("k:AAAA")
	f.Add(":,:")
	f.Fuzz(func(t *testing.T, spec string) {
		k, err := crypt.ParseKeyring(spec)
		if err != nil {
			return
		}
		plain, err := k.Open(k.Seal([]byte("v"), "p"), "p")
		if err != nil || string(plain) != "v" {
			t.Fatalf("round trip with %q: %v", spec, err)
		}
	})
}

// FuzzOpen: bytes read from the database never panic Open.
func FuzzOpen(f *testing.F) {
	k, err := crypt.ParseKeyring(crypt.GenerateKeySpec("k1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.Seal([]byte("secret"), "p"))
	f.Add([]byte{1, 2, 'k', '1'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		_, _ = k.Open(sealed, "p")
		_, _ = crypt.KeyID(sealed)
	})
}
