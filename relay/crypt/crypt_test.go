package crypt_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
)

// secretOf is the client secret column of credential 7 of company A, as the store binds it.
var secretOf = crypt.Binding{Table: "oauth_credential", Column: "client_secret_enc", Company: "A", Row: 7, Legacy: "oauth.client_secret"}

func TestSealOpenAndRotation(t *testing.T) {
	t.Parallel()
	oldSpec := crypt.GenerateKeySpec("k1")
	old, err := crypt.ParseKeyring(oldSpec)
	require.NoError(t, err)
	sealed := old.Seal([]byte("client-secret"), secretOf)
	require.NotContains(t, string(sealed), "client-secret")
	id, err := crypt.KeyID(sealed)
	require.NoError(t, err)
	require.Equal(t, "k1", id)

	plain, err := old.Open(sealed, secretOf)
	require.NoError(t, err)
	require.Equal(t, "client-secret", string(plain))
	require.True(t, old.IsCurrent(sealed))

	// Rotation: k2 seals, k1 still opens; a keyring without k1 cannot.
	rotated, err := crypt.ParseKeyring(crypt.GenerateKeySpec("k2") + "," + oldSpec)
	require.NoError(t, err)
	require.Equal(t, "k2", rotated.CurrentKeyID())
	plain, err = rotated.Open(sealed, secretOf)
	require.NoError(t, err)
	require.Equal(t, "client-secret", string(plain))
	require.False(t, rotated.IsCurrent(sealed), "sealed with an old key")
	resealed := rotated.Seal(plain, secretOf)
	id, _ = crypt.KeyID(resealed)
	require.Equal(t, "k2", id)
	require.True(t, rotated.IsCurrent(resealed))
	other, err := crypt.ParseKeyring(crypt.GenerateKeySpec("k3"))
	require.NoError(t, err)
	_, err = other.Open(sealed, secretOf)
	require.ErrorIs(t, err, crypt.ErrUnknownKey)

	// Tampering is detected; two seals of one value differ (random nonce).
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err = old.Open(tampered, secretOf)
	require.ErrorIs(t, err, crypt.ErrCorrupt)
	require.NotEqual(t, sealed, old.Seal([]byte("client-secret"), secretOf))

	// The empty string seals to no value and opens back to "".
	require.Nil(t, old.SealString("", secretOf))
	s, err := old.OpenString(nil, secretOf)
	require.NoError(t, err)
	require.Empty(t, s)
}

// TestSealedValueIsBoundToItsPlace: a value opens only in the table, column, company and row it
// was sealed for.
func TestSealedValueIsBoundToItsPlace(t *testing.T) {
	t.Parallel()
	k, err := crypt.ParseKeyring(crypt.GenerateKeySpec("k1"))
	require.NoError(t, err)
	sealed := k.Seal([]byte("client-secret"), secretOf)
	for name, b := range map[string]crypt.Binding{
		"another company": {Table: "oauth_credential", Column: "client_secret_enc", Company: "B", Row: 7, Legacy: "oauth.client_secret"},
		"another row":     {Table: "oauth_credential", Column: "client_secret_enc", Company: "A", Row: 8, Legacy: "oauth.client_secret"},
		"another column":  {Table: "oauth_credential", Column: "code_enc", Company: "A", Row: 7, Legacy: "oauth.code"},
		"another table":   {Table: "webhook", Column: "client_secret_enc", Company: "A", Row: 7, Legacy: "oauth.client_secret"},
		// Length prefixes: shifting a character between fields makes another binding.
		"fields shifted": {Table: "oauth_credentia", Column: "lclient_secret_enc", Company: "A", Row: 7, Legacy: "oauth.client_secret"},
	} {
		_, err := k.Open(sealed, b)
		require.ErrorIs(t, err, crypt.ErrCorrupt, name)
		require.ErrorContains(t, err, "belongs to another row, company or column", name)
	}
}

// TestVersion1StillOpens: values sealed before the upgrade open with the column's legacy purpose
// and are not current, so `walhook keys reseal` rewrites them.
func TestVersion1StillOpens(t *testing.T) {
	t.Parallel()
	spec := crypt.GenerateKeySpec("k1")
	k, err := crypt.ParseKeyring(spec)
	require.NoError(t, err)
	v1 := xtest.SealV1(t, spec, []byte("old-secret"), "oauth.client_secret")
	plain, err := k.Open(v1, secretOf)
	require.NoError(t, err)
	require.Equal(t, "old-secret", string(plain))
	require.False(t, k.IsCurrent(v1))
	_, err = k.Open(v1, crypt.Binding{Table: "oauth_credential", Column: "code_enc", Company: "A", Row: 7, Legacy: "oauth.code"})
	require.ErrorIs(t, err, crypt.ErrCorrupt, "a v1 value still opens only in its column")
	noLegacy := secretOf
	noLegacy.Legacy = ""
	_, err = k.Open(v1, noLegacy)
	require.ErrorIs(t, err, crypt.ErrCorrupt, "a binding without a legacy purpose opens no v1 value")

	// Once refused, v1 values do not open at all; v2 values still do.
	k.RefuseUnbound()
	_, err = k.Open(v1, secretOf)
	require.ErrorIs(t, err, crypt.ErrUnbound)
	plain, err = k.Open(k.Seal([]byte("new"), secretOf), secretOf)
	require.NoError(t, err)
	require.Equal(t, "new", string(plain))
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
		plain, err := k.Open(k.Seal([]byte("v"), secretOf), secretOf)
		if err != nil || string(plain) != "v" {
			t.Fatalf("round trip with %q: %v", spec, err)
		}
	})
}

// FuzzOpen: bytes read from the database never panic Open, whatever their version, and nothing
// but the sealed values themselves opens.
func FuzzOpen(f *testing.F) {
	spec := crypt.GenerateKeySpec("k1")
	k, err := crypt.ParseKeyring(spec)
	if err != nil {
		f.Fatal(err)
	}
	v2 := k.Seal([]byte("secret"), secretOf)
	v1 := xtest.SealV1(f, spec, []byte("secret"), secretOf.Legacy)
	f.Add(v2)
	f.Add(v1)
	f.Add([]byte{1, 2, 'k', '1'})
	f.Add([]byte{2, 2, 'k', '1'})
	f.Add([]byte{3, 2, 'k', '1'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		plain, err := k.Open(sealed, secretOf)
		if err == nil && (string(plain) != "secret" || (!bytes.Equal(sealed, v1) && !bytes.Equal(sealed, v2))) {
			t.Fatalf("opened bytes that were not sealed: %x", sealed)
		}
		_ = k.IsCurrent(sealed)
		_, _ = crypt.KeyID(sealed)
	})
}
