package redact_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/redact"
)

func TestText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		// Go's url.Error around a GET token request: every query value goes, the rest stays.
		{`fetch oauth token: Get "https://auth.example.com:8443/oauth/token?client_id=abc&client_secret=s3cr3t&grant_type=client_credentials": dial tcp 10.0.0.1:8443: connect: connection refused`,
			`fetch oauth token: Get "https://auth.example.com:8443/oauth/token?client_id=••••••&client_secret=••••••&grant_type=••••••": dial tcp 10.0.0.1:8443: connect: connection refused`},
		{`Post "https://user:pa55@hooks.example.com/in?sig=abc#frag": EOF`, `Post "https://••••••@hooks.example.com/in?sig=••••••#••••••": EOF`},
		{`redirect to "http://evil.example/cb?code=xyz&state" not followed`, `redirect to "http://evil.example/cb?code=••••••&••••••" not followed`},
		{`GET http://hooks.example.com/in?empty=&a=1;b=2`, `GET http://hooks.example.com/in?empty=&a=••••••&b=••••••`},
		{`no query http://hooks.example.com/in/path: timeout`, `no query http://hooks.example.com/in/path: timeout`},
		// Pairs an endpoint echoes.
		{`invalid_client (client_secret=hunter22 is wrong)`, `invalid_client (client_secret=•••••• is wrong)`},
		{`{"error":"invalid_grant","refresh_token":"rt-123 456","code":"c0de"}`, `{"error":"invalid_grant","refresh_token":"••••••","code":"••••••"}`},
		{`got Authorization: Bearer eyJhbGciOi.abc.def from you`, `got Authorization: •••••• from you`},
		{`token endpoint said bearer abcdefgh is expired`, `token endpoint said bearer •••••• is expired`},
		{`header X-Api-Key: k-9876 rejected`, `header X-Api-Key: •••••• rejected`},
		{`password = swordfish, user = ada`, `password = ••••••, user = ada`},
		// Not secrets: host:port, status codes, words.
		{`fetch oauth token from auth.example.com:443: token endpoint auth.example.com answered 401: invalid_client`,
			`fetch oauth token from auth.example.com:443: token endpoint auth.example.com answered 401: invalid_client`},
		{`endpoint answered 500 (status_code=500)`, `endpoint answered 500 (status_code=500)`},
		{``, ``},
	} {
		require.Equal(t, c.want, redact.Text(c.in), c.in)
	}
}

func TestKnownValues(t *testing.T) {
	t.Parallel()
	const sec = "S3cr3t/+&value"
	for _, in := range []string{
		"the client " + sec + " is not allowed",
		"echo: " + url.QueryEscape(sec),
		"echo: " + url.PathEscape(sec),
		fmt.Sprintf("quoted %q", "x"+sec+"\n"),
	} {
		out := redact.Text(in, sec, "ab")
		require.NotContains(t, out, sec, in)
		require.NotContains(t, out, url.QueryEscape(sec), in)
		require.Contains(t, out, redact.Mask, in)
	}
	// Too short to search for; the rest of the text is untouched.
	require.Equal(t, "a b abc", redact.Values("a b abc", "ab", ""))
	// A secret made of the mask's own characters cannot be masked out: the whole text goes.
	require.Equal(t, redact.Mask, redact.Values("x ••••• y", "•••••"))
	require.Equal(t, "", redact.Error(nil, sec))
	require.Equal(t, "no "+redact.Mask+" here", redact.Error(errors.New("no "+sec+" here"), sec))
}

// FuzzText: whatever the text around it, a known secret never survives, in any of its forms,
// and a secret-looking query value never does either.
func FuzzText(f *testing.F) {
	f.Add("fetch oauth token: Get \"https://a.example/t?client_secret=", "s3cr3t-value", "\": refused")
	f.Add("invalid client ", "abcd", " for client_id=1")
	f.Add("", "****x", "**")
	f.Add("Authorization: Bearer ", "tok.en.value", "")
	f.Fuzz(func(t *testing.T, before, secret, after string) {
		out := redact.Text(before+secret+after, secret)
		if len(secret) >= redact.MinSecretLen {
			for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
				if strings.Contains(out, form) {
					t.Fatalf("Text(%q) = %q still holds %q", before+secret+after, out, form)
				}
			}
		}
		u := "https://h.example/p?k=" + url.QueryEscape(secret) + "x"
		if out := redact.Text(before + " " + u + " " + after); strings.Contains(out, "k="+url.QueryEscape(secret)+"x") {
			t.Fatalf("query value kept: %q", out)
		}
		_ = redact.Values(before, secret, after)
	})
}

func TestURL(t *testing.T) {
	t.Parallel()
	mask := url.QueryEscape(redact.Mask)
	for in, want := range map[string]string{
		"https://hooks.example.com/in?email=ada%40example.com&n=1": "https://hooks.example.com/in?email=ada%40example.com&n=1",
		"https://hooks.example.com/in?api_key=k-123456&email=a":    "https://hooks.example.com/in?api_key=" + mask + "&email=a",
		"https://hooks.example.com/in?Token=abc&x=":                "https://hooks.example.com/in?Token=" + mask + "&x=",
		"https://bob:hunter22@hooks.example.com/in":                "https://bob:" + url.PathEscape(redact.Mask) + "@hooks.example.com/in",
		"https://hooks.example.com/in?sig=topsecretvalue":          "https://hooks.example.com/in?sig=" + redact.Mask,
		"":            "",
		"http://[::1": redact.Mask,
	} {
		require.Equal(t, want, redact.URL(in, "topsecretvalue"), in)
	}
}

// FuzzURL: a known secret never survives in a recorded request URL, wherever it sits, and a
// credential-named query parameter's value never does either.
func FuzzURL(f *testing.F) {
	f.Add("https://h.example/in?fixed=1&x=", "s3cr3t-value", "&y=2")
	f.Add("http://u:", "p4ssword", "@h.example/")
	f.Add("https://h.example/", "a b/c", "?q=1#frag")
	f.Fuzz(func(t *testing.T, before, secret, after string) {
		out := redact.URL(before+secret+after, secret)
		if len(secret) >= redact.MinSecretLen && strings.Contains(out, secret) {
			t.Fatalf("URL(%q) = %q still holds %q", before+secret+after, out, secret)
		}
		if secret == "" || secret == redact.Mask {
			return
		}
		v := url.QueryEscape(secret)
		if out := redact.URL("https://h.example/p?api_key=" + v + "&n=1"); strings.Contains(out, "api_key="+v+"&") {
			t.Fatalf("credential parameter kept: %q", out)
		}
	})
}
