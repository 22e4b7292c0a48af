package crypt_test

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/crypt"
)

func newIDCipher(t testing.TB) *crypt.IDCipher {
	t.Helper()
	c, err := crypt.NewIDCipher(crypt.NewIDKey())
	require.NoError(t, err)
	return c
}

// TestPublicIDs: consecutive row ids give unrelated public ids that do not contain the row id,
// decode back only for their prefix and company, and are stable for one key.
func TestPublicIDs(t *testing.T) {
	t.Parallel()
	c := newIDCipher(t)
	a, b := c.Encode("msg_", "A", 1000), c.Encode("msg_", "A", 1001)
	require.Regexp(t, `^msg_[a-z2-7]{26}$`, a)
	require.Equal(t, a, c.Encode("msg_", "A", 1000), "stable")
	require.NotContains(t, a, "1000")
	// Not sequential-looking: the two share no long prefix (AES diffuses the last bit over the
	// whole block). A shared prefix of 4 characters happens by chance about once in a million.
	common := 0
	for common < len(a) && a[common] == b[common] {
		common++
	}
	require.Less(t, common, len("msg_")+4, "%s and %s", a, b)

	id, ok := c.Decode("msg_", "A", a)
	require.True(t, ok)
	require.Equal(t, int64(1000), id)
	for name, s := range map[string]string{
		"the row id":                   "1000",
		"msg_ and the row id":          "msg_1000",
		"another company's id":         c.Encode("msg_", "B", 1000),
		"another kind of id":           c.Encode("evt_", "A", 1000),
		"upper case":                   "msg_" + strings.ToUpper(a[4:]),
		"a character changed":          a[:10] + other(a[10]) + a[11:],
		"too long":                     a + "a",
		"too short":                    a[:len(a)-1],
		"a newline inside":             a[:10] + "\n" + a[10:],
		"another key's id":             newIDCipher(t).Encode("msg_", "A", 1000),
		"non-canonical last character": a[:len(a)-1] + nonCanonical(a[len(a)-1]),
	} {
		if s == a {
			continue
		}
		_, ok := c.Decode("msg_", "A", s)
		require.False(t, ok, name)
	}
	_, err := crypt.NewIDCipher([]byte("short"))
	require.ErrorContains(t, err, "want 32 bytes")
}

func other(ch byte) string {
	if ch == 'a' {
		return "b"
	}
	return "a"
}

// TestDigest: keyed, so the digest of a guessable input differs between keys and from its plain
// SHA-256; stable for one key.
func TestDigest(t *testing.T) {
	t.Parallel()
	c, other := newIDCipher(t), newIDCipher(t)
	require.Equal(t, c.Digest("outbox:1"), c.Digest("outbox:1"))
	require.NotEqual(t, c.Digest("outbox:1"), c.Digest("outbox:2"))
	require.NotEqual(t, c.Digest("outbox:1"), other.Digest("outbox:1"))
	plain := sha256.Sum256([]byte("outbox:1"))
	d := c.Digest("outbox:1")
	require.NotEqual(t, plain[:16], d[:])
}

// nonCanonical returns a base32 character that differs from ch only in the two bits past the
// 128th, which a lenient decoder would ignore.
func nonCanonical(ch byte) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	i := strings.IndexByte(alphabet, ch)
	return string(alphabet[i^1])
}

// FuzzDecodePublicID: a public id given in a URL never panics Decode, and whatever decodes
// encodes back to the same string (one public id per row).
func FuzzDecodePublicID(f *testing.F) {
	c := newIDCipher(f)
	f.Add(c.Encode("msg_", "A", 1))
	f.Add(c.Encode("msg_", "B", 1))
	f.Add("msg_" + strconv.Itoa(12345))
	f.Add("msg_aaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := c.Decode("msg_", "A", s)
		if ok && c.Encode("msg_", "A", id) != s {
			t.Fatalf("%q decodes to %d, which encodes to %q", s, id, c.Encode("msg_", "A", id))
		}
	})
}

// BenchmarkEncode is the cost the dispatcher pays per delivery for its webhook-id.
func BenchmarkEncode(b *testing.B) {
	c := newIDCipher(b)
	for i := range b.N {
		_ = c.Encode("msg_", "company-42", int64(i))
	}
}
