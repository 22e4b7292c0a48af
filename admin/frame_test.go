package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// TestParseFrameAncestors checks the origin list of --frame-ancestors: exact origins, normalised
// and deduplicated; https, or http for loopback hosts only; no wildcard, path, query, user info
// or anything that could break out of the CSP header.
func TestParseFrameAncestors(t *testing.T) {
	t.Parallel()
	good := map[string][]string{
		"":                             nil,
		"  ":                           nil,
		"https://app.example.com":      {"https://app.example.com"},
		"HTTPS://App.Example.COM/":     {"https://app.example.com"},
		"https://app.example.com:8443": {"https://app.example.com:8443"},
		"https://app.example.com:0443": {"https://app.example.com:443"},
		" https://a.example , https://b.example:1 ": {"https://a.example", "https://b.example:1"},
		"https://a.example,https://A.example/":      {"https://a.example"},
		"http://localhost:3000":                     {"http://localhost:3000"},
		"http://127.0.0.1:3000":                     {"http://127.0.0.1:3000"},
		"http://127.9.9.9":                          {"http://127.9.9.9"},
		"http://[::1]:3000":                         {"http://[::1]:3000"},
		"https://[2001:DB8::1]":                     {"https://[2001:db8::1]"},
		"https://192.0.2.10:9000":                   {"https://192.0.2.10:9000"},
		"https://xn--bcher-kva.example":             {"https://xn--bcher-kva.example"},
	}
	for in, want := range good {
		got, err := ParseFrameAncestors(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got, "%q", in)
	}
	bad := map[string]string{
		"app.example.com":                      "want an origin",
		"https://":                             "want an origin",
		"'self'":                               "not allowed",
		"*":                                    "wildcards",
		"https://*.example.com":                "wildcards",
		"https:":                               "want an origin",
		"https://a.example,":                   "empty",
		",https://a.example":                   "empty",
		"https://a.example,,https://b.example": "empty",
		"https://a.example/settings":           "path, query or fragment",
		"https://a.example?x=1":                "path, query or fragment",
		"https://a.example?":                   "path, query or fragment",
		"https://a.example#top":                "path, query or fragment",
		"https://a.example#":                   "path, query or fragment",
		"https://user@a.example":               "user info",
		"ftp://a.example":                      "scheme",
		"javascript://a.example":               "scheme",
		"http://app.example.com":               "only for a loopback host",
		"http://10.0.0.1":                      "only for a loopback host",
		"http://localhost.example.com":         "only for a loopback host",
		"https://a.example:0":                  "port",
		"https://a.example:65536":              "port",
		"https://a.example:":                   "colon without a port",
		"https://a.example; script-src *":      "not allowed",
		"https://a.example https://b.example":  "not allowed",
		"https://a.example'":                   "not allowed",
		"https://bücher.example":               "not allowed",
		"https://-a.example":                   "not a DNS name",
		"https://a..example":                   "not a DNS name",
		"https://a.example.":                   "not a DNS name",
		"https://a_b.example":                  "not a DNS name",
		"https://1.2.3":                        "neither a DNS name nor an IPv4",
		"https://[fe80::1%25eth0]":             "not an IPv6 address",
		"https://[127.0.0.1]":                  "want an origin",
	}
	for in, want := range bad {
		_, err := ParseFrameAncestors(in)
		require.Error(t, err, "%q", in)
		require.Contains(t, err.Error(), want, "%q", in)
	}
	many := strings.Repeat("https://a.example,", 40) + "https://b.example"
	got, err := ParseFrameAncestors(many)
	require.NoError(t, err, "duplicates count once")
	require.Equal(t, []string{"https://a.example", "https://b.example"}, got)
	var distinct []string
	for _, c := range "abcdefghijklmnopqrstuvwxyz0123456789" {
		distinct = append(distinct, "https://"+string(c)+".example")
	}
	_, err = ParseFrameAncestors(strings.Join(distinct, ","))
	require.ErrorContains(t, err, "36 origins: at most 32")
}

// TestWebPageFraming checks the page's framing headers: with no frame ancestors the page refuses
// every frame (CSP frame-ancestors 'none' and X-Frame-Options DENY); with a list, the CSP names
// exactly those origins and X-Frame-Options, which cannot name them, is absent. A list built in
// code is checked as the flag is: a bad entry is dropped, never written into the header.
func TestWebPageFraming(t *testing.T) {
	t.Parallel()
	get := func(frameAncestors []string, path string) http.Header {
		srv := httptest.NewServer(New(Config{API: true, FrameAncestors: frameAncestors}, nil, nil, zerolog.Nop(), prometheus.NewRegistry()).Handler())
		defer srv.Close()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp.Header
	}
	const rest = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
	for _, path := range []string{"/", "/ui/app.js"} {
		h := get(nil, path)
		require.Equal(t, rest+"frame-ancestors 'none'", h.Get("Content-Security-Policy"), path)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), path)

		h = get([]string{"https://app.example.com", "http://localhost:3000"}, path)
		require.Equal(t, rest+"frame-ancestors https://app.example.com http://localhost:3000", h.Get("Content-Security-Policy"), path)
		require.Empty(t, h.Values("X-Frame-Options"), path)
	}

	h := get([]string{"https://App.Example.com/", "https://x.example; script-src *", "https://*.example", "https://app.example.com"}, "/")
	require.Equal(t, rest+"frame-ancestors https://app.example.com", h.Get("Content-Security-Policy"))
	h = get([]string{"http://evil.example"}, "/")
	require.Equal(t, rest+"frame-ancestors 'none'", h.Get("Content-Security-Policy"), "nothing valid left: no frame")
	require.Equal(t, "DENY", h.Get("X-Frame-Options"))

	// The API's answers are not pages and carry no framing headers either way.
	srv := httptest.NewServer(New(Config{API: true, FrameAncestors: []string{"https://app.example.com"}}, nil, nil, zerolog.Nop(), prometheus.NewRegistry()).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("X-Frame-Options"))
}

// FuzzParseFrameAncestors: whatever the input, an accepted list holds only origins that parse
// back to themselves and carry nothing but origin characters into the CSP header.
func FuzzParseFrameAncestors(f *testing.F) {
	for _, s := range []string{"", "https://app.example.com", "http://localhost:3000,https://a.example:8443/",
		"http://[::1]:1", "https://*.example", "https://a.example; script-src *", "https://user@a.example/x?y#z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFrameAncestors(s)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(got), maxFrameAncestors)
		for _, o := range got {
			require.True(t, strings.HasPrefix(o, "https://") || strings.HasPrefix(o, "http://"), o)
			for _, r := range o {
				ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:/[]", r)
				require.True(t, ok, "character %q in %q", r, o)
			}
			again, err := ParseFrameAncestors(o)
			require.NoError(t, err, o)
			require.Equal(t, []string{o}, again)
		}
	})
}
