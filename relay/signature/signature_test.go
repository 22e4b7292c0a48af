package signature_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/signature"
)

// The specification's published test vector (standard-webhooks, libraries/go/webhook_test.go
// TestWebhookSign and the shared spec examples).
const (
	vecSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecMsgID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS      = 1614265330
	vecPayload = `{"test": 2432232314}`
	vecSig     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set(signature.HeaderID, id)
	h.Set(signature.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(signature.HeaderSignature, sig)
	return h
}

func TestSpecVector(t *testing.T) {
	t.Parallel()
	got, err := signature.Sign(vecSecret, vecMsgID, time.Unix(vecTS, 0), []byte(vecPayload))
	require.NoError(t, err)
	require.Equal(t, vecSig, got)
	// The bare base64 secret (without whsec_) is the same key.
	got, err = signature.Sign(strings.TrimPrefix(vecSecret, "whsec_"), vecMsgID, time.Unix(vecTS, 0), []byte(vecPayload))
	require.NoError(t, err)
	require.Equal(t, vecSig, got)
	require.NoError(t, signature.Verify(vecSecret, headers(vecMsgID, vecTS, vecSig), []byte(vecPayload), time.Unix(vecTS, 0), signature.DefaultTolerance))
}

// A new secret is "whsec_" and 32 random bytes that Key reads back, and signs what Verify accepts.
func TestNewSecret(t *testing.T) {
	t.Parallel()
	s1, s2 := signature.NewSecret(), signature.NewSecret()
	require.True(t, strings.HasPrefix(s1, "whsec_"), s1)
	require.NotEqual(t, s1, s2)
	key, err := signature.Key(s1)
	require.NoError(t, err)
	require.Len(t, key, 32)
	sig, err := signature.Sign(s1, vecMsgID, time.Unix(vecTS, 0), []byte(vecPayload))
	require.NoError(t, err)
	require.NoError(t, signature.Verify(s1, headers(vecMsgID, vecTS, sig), []byte(vecPayload), time.Unix(vecTS, 0), signature.DefaultTolerance))
	require.ErrorIs(t, signature.Verify(s2, headers(vecMsgID, vecTS, sig), []byte(vecPayload), time.Unix(vecTS, 0), signature.DefaultTolerance), signature.ErrNoMatch)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(vecTS, 0)
	body := []byte(vecPayload)
	bad := "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
	for _, tc := range []struct {
		name    string
		h       http.Header
		now     time.Time
		body    []byte
		wantErr error
	}{
		{"valid", headers(vecMsgID, vecTS, vecSig), now, body, nil},
		{"missing id", headers("", vecTS, vecSig), now, body, signature.ErrMissingHeaders},
		{"missing signature", headers(vecMsgID, vecTS, ""), now, body, signature.ErrMissingHeaders},
		{"invalid signature", headers(vecMsgID, vecTS, bad), now, body, signature.ErrNoMatch},
		{"tampered body", headers(vecMsgID, vecTS, vecSig), now, []byte(`{"test": 1}`), signature.ErrNoMatch},
		{"old timestamp", headers(vecMsgID, vecTS, vecSig), now.Add(signature.DefaultTolerance + time.Second), body, signature.ErrTimestampSkew},
		{"new timestamp", headers(vecMsgID, vecTS, vecSig), now.Add(-signature.DefaultTolerance - time.Second), body, signature.ErrTimestampSkew},
		{"multiple signatures, one valid", headers(vecMsgID, vecTS, bad+" v2,"+bad[3:]+" "+vecSig), now, body, nil},
		{"non-numeric timestamp", func() http.Header {
			h := headers(vecMsgID, vecTS, vecSig)
			h.Set(signature.HeaderTimestamp, "soon")
			return h
		}(), now, body, signature.ErrInvalidTimestamp},
	} {
		err := signature.Verify(vecSecret, tc.h, tc.body, tc.now, signature.DefaultTolerance)
		if tc.wantErr == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.wantErr, tc.name)
		}
	}
}

func TestRotationSignsWithBoth(t *testing.T) {
	t.Parallel()
	const old = "whsec_dGhlIG9sZCBzZWNyZXQgb2YgdGhpcyB3ZWJob29r"
	s, err := signature.NewSigner(vecSecret, old)
	require.NoError(t, err)
	sig := s.Sign(vecMsgID, time.Unix(vecTS, 0), []byte(vecPayload))
	require.Len(t, strings.Fields(sig), 2)
	require.True(t, strings.HasPrefix(sig, vecSig+" "))
	for _, sec := range []string{vecSecret, old} {
		require.NoError(t, signature.Verify(sec, headers(vecMsgID, vecTS, sig), []byte(vecPayload), time.Unix(vecTS, 0), 0))
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vecMsgID, "1614265330", vecSig, []byte(vecPayload))
	f.Add("", "x", "v1,", []byte(nil))
	f.Add("msg", "-1", "v1,!!! v2,abc v1,Zm9v", []byte("{}"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(signature.HeaderID, id)
		h.Set(signature.HeaderTimestamp, ts)
		h.Set(signature.HeaderSignature, sig)
		err := signature.Verify(vecSecret, h, body, time.Unix(vecTS, 0), 0)
		// Whatever the input, a signature made by Sign over it verifies.
		n, perr := strconv.ParseInt(ts, 10, 64)
		if id == "" || perr != nil || err == nil {
			return
		}
		good, serr := signature.Sign(vecSecret, id, time.Unix(n, 0), body)
		require.NoError(t, serr)
		h.Set(signature.HeaderSignature, good)
		require.NoError(t, signature.Verify(vecSecret, h, body, time.Unix(vecTS, 0), 0))
	})
}

// GET and DELETE are signed over the raw query string, the other methods over the body.
func TestContent(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":1}`)
	require.Equal(t, "a=1&b=%20", string(signature.Content("GET", "a=1&b=%20", nil)))
	require.Equal(t, "a=1", string(signature.Content("DELETE", "a=1", body)))
	require.Equal(t, `{"a":1}`, string(signature.Content("POST", "a=1", body)))
	require.Equal(t, `{"a":1}`, string(signature.Content("PUT", "", body)))
	require.Equal(t, `{"a":1}`, string(signature.Content("PATCH", "", body)))
}
