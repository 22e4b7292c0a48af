package dispatch_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
)

func TestSelect(t *testing.T) {
	t.Parallel()
	env := envelope(1)
	for path, want := range map[string]string{
		"data.email":        `"ada1@example.com"`,
		"data.address.city": `"London"`,
		"data.tags.1":       `"b"`,
		"data.tags.9":       `null`,
		"data.tags.x":       `null`,
		"type":              `"contact.created"`,
		"data.nope.deeper":  `null`,
		"data.email.x":      `null`,
		"data":              `{"id":1,"email":"ada1@example.com","name":"Ada","address":{"city":"London"},"tags":["a","b"]}`,
	} {
		got, err := dispatch.Select(env, path)
		require.NoError(t, err, path)
		require.Equal(t, want, string(got), path)
	}
	// One rule with the API (webhook.ValidParamPath): a path starts at an envelope field, so a
	// bare "email" is refused here as it is when a webhook is saved, not read as data.email.
	for _, path := range []string{"", "email", " data.email", "data..email", "data.e mail"} {
		_, err := dispatch.Select(env, path)
		require.Error(t, err, path)
	}
}

func FuzzSelect(f *testing.F) {
	f.Add([]byte(envelope(1)), "data.email")
	f.Add([]byte(envelope(2)), "data.tags.0")
	f.Add([]byte(`{"data":[1,{"a":null}]}`), "data.1.a")
	f.Add([]byte(`[`), "x")
	f.Add([]byte(`{"data":"str"}`), "....")
	f.Fuzz(func(t *testing.T, env []byte, path string) {
		got, err := dispatch.Select(env, path)
		if err != nil {
			return
		}
		require.True(t, json.Valid(got), "Select returns valid JSON: %q", got)
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		" 0 ":                           0,
		"Fri, 27 Nov 2026 10:05:00 GMT": 5 * time.Minute,
		"Fri, 27 Nov 2026 09:00:00 GMT": 0,
	} {
		got, ok := dispatch.ParseRetryAfter(v, now)
		require.True(t, ok, v)
		require.Equal(t, want, got, v)
	}
	for _, v := range []string{"", "-1", "soon", "1.5", "99999999999999"} {
		_, ok := dispatch.ParseRetryAfter(v, now)
		require.False(t, ok, v)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "Fri, 27 Nov 2026 10:05:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "", "-5", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := dispatch.ParseRetryAfter(v, now)
		if ok {
			require.GreaterOrEqual(t, d, time.Duration(0))
		}
	})
}
