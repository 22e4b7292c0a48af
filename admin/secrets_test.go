package admin

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// restart serves e's database with another configuration (the test's allow-list kept) and
// returns the server, for tests of configured limits.
func (e *env) restart(cfg Config) *Server {
	e.t.Helper()
	cfg.API = true
	cfg.AllowNets = loopback
	s := New(cfg, e.st, e.tester, zerolog.Nop(), prometheus.NewRegistry())
	e.srv = httptest.NewServer(s.Handler())
	e.t.Cleanup(e.srv.Close)
	return s
}

// TestStoredSecretsNeverFollowANewURL: a webhook's stored header values (secret or
// credential-looking) are kept by the mask only while the URL names the same destination; a
// change of URL must give them again (422 naming each, nothing stored), and so must a test of
// the edited webhook.
func TestStoredSecretsNeverFollowANewURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("Secrets", func(w *webhook.Webhook) {
		w.URL = "https://hooks.example.com/in/acme"
		w.Headers = []webhook.Header{
			{Key: "X-Plain", Value: "plain"},
			{Key: "X-Signing", Value: "stored-secret", Secret: true},
			{Key: "Authorization", Value: "Bearer stored-token"},
		}
	})
	path := fmt.Sprintf("/v1/webhooks/%d", w.ID)
	stored := func() webhook.Webhook {
		got, err := e.st.WebhookGet(e.ctx, "acme", w.ID)
		require.NoError(t, err)
		return got
	}

	// PATCH of the URL alone: each kept value is named, nothing changes.
	for _, url := range []string{"https://attacker.example.net/in/acme", "https://hooks.example.com/in/other", "http://hooks.example.com/in/acme"} {
		r := e.do("PATCH", path, e.manager, map[string]any{"url": url})
		require.Equal(t, 422, r.status, "%s: %s", url, r.raw)
		fe := r.fieldErrors(t)
		require.Len(t, fe, 2, "%s", r.raw)
		require.Contains(t, fe["headers[1].value"], "URL changed")
		require.Contains(t, fe["headers[2].value"], "never sent to a destination chosen after it was stored")
		require.Equal(t, "https://hooks.example.com/in/acme", stored().URL)
	}
	// PUT with the masks and a new URL: the same.
	put := hookBody("Secrets")
	put["url"] = "https://attacker.example.net/in"
	put["headers"] = []map[string]any{{"key": "X-Plain", "value": "plain"}, {"key": "X-Signing", "value": webhook.Mask, "secret": true}, {"key": "Authorization", "value": webhook.Mask}}
	r := e.do("PUT", path, e.owner, put)
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Contains(t, r.fieldErrors(t), "headers[1].value")
	// A secret left empty counts as kept too.
	put["headers"] = []map[string]any{{"key": "X-Signing", "value": "", "secret": true}}
	r = e.do("PUT", path, e.owner, put)
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Contains(t, r.fieldErrors(t), "headers[0].value")
	require.Equal(t, "stored-secret", stored().Headers[1].Value)

	// The same destination written differently keeps them.
	e.must(200, "PATCH", path, e.manager, map[string]any{"url": "HTTPS://Hooks.Example.com:443/in/acme"})
	require.Equal(t, "stored-secret", stored().Headers[1].Value)
	require.Equal(t, "Bearer stored-token", stored().Headers[2].Value)

	// Test of the edited webhook (issue 15): the mask is the stored value while the URL is the
	// stored one, and the test sends it…
	edited := hookBody("Secrets")
	edited["url"] = "https://hooks.example.com/in/acme"
	edited["headers"] = []map[string]any{{"key": "X-Signing", "value": webhook.Mask, "secret": true}, {"key": "Authorization", "value": webhook.Mask}, {"key": "X-New", "value": "n"}}
	calls := len(e.tester.calls)
	e.must(200, "POST", path+"/test", e.manager, edited)
	sent := e.tester.last().w
	require.Equal(t, []webhook.Header{{Key: "X-Signing", Value: "stored-secret", Secret: true}, {Key: "Authorization", Value: "Bearer stored-token"}, {Key: "X-New", Value: "n"}}, sent.Headers)
	require.Len(t, stored().Headers, 3, "a test stores nothing")
	// …but not to a new URL: 422, nothing sent.
	edited["url"] = "https://attacker.example.net/in"
	r = e.do("POST", path+"/test", e.manager, edited)
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Contains(t, r.fieldErrors(t), "headers[0].value")
	require.Contains(t, r.fieldErrors(t), "headers[1].value")
	require.Len(t, e.tester.calls, calls+1, "nothing was sent")
	// The unsaved test knows no stored value at all.
	r = e.do("POST", "/v1/webhooks/test", e.manager, edited)
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Contains(t, r.fieldErrors(t), "headers[0].value")

	// Giving the values again moves them.
	put["headers"] = []map[string]any{{"key": "X-Signing", "value": "new-secret", "secret": true}, {"key": "Authorization", "value": "Bearer new"}}
	e.must(200, "PUT", path, e.owner, put)
	require.Equal(t, "https://attacker.example.net/in", stored().URL)
	require.Equal(t, []webhook.Header{{Key: "X-Signing", Value: "new-secret", Secret: true}, {Key: "Authorization", Value: "Bearer new"}}, stored().Headers)
}

// TestStoredOAuthSecretsNeverFollowANewTokenURL: the same rule for an OAuth credential's client
// secret, code and refresh token.
func TestStoredOAuthSecretsNeverFollowANewTokenURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.must(201, "POST", "/v1/oauth", e.manager, map[string]any{
		"name": "CRM", "token_url": "https://auth.example.com/token", "grant_type": "authorization_code",
		"client_id": "cid", "client_secret": "s3cret", "code": "the-code",
	})
	path := fmt.Sprintf("/v1/oauth/%d", int64(c["id"].(float64)))
	r := e.do("PATCH", path, e.manager, map[string]any{"token_url": "https://attacker.example.net/token"})
	require.Equal(t, 422, r.status, "%s", r.raw)
	fe := r.fieldErrors(t)
	require.Len(t, fe, 2, "%s", r.raw)
	require.Contains(t, fe["client_secret"], "token URL changed")
	require.Contains(t, fe["code"], "token URL changed")
	// The mask is "keep" too.
	r = e.do("PATCH", path, e.manager, map[string]any{"token_url": "https://auth.example.com/other", "client_secret": webhook.Mask, "code": "new-code"})
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Equal(t, []string{"client_secret"}, keys(r.fieldErrors(t)))
	stored, err := e.st.OAuthCredentialGet(e.ctx, "acme", int64(c["id"].(float64)))
	require.NoError(t, err)
	require.Equal(t, "https://auth.example.com/token", stored.TokenURL)
	require.Equal(t, "the-code", stored.Code)

	// Same destination: kept. Given again (or cleared): moved.
	e.must(200, "PATCH", path, e.manager, map[string]any{"token_url": "https://AUTH.example.com:443/token"})
	e.must(200, "PATCH", path, e.manager, map[string]any{"token_url": "https://auth2.example.com/token", "client_secret": "", "code": "code-2"})
	stored, err = e.st.OAuthCredentialGet(e.ctx, "acme", stored.ID)
	require.NoError(t, err)
	require.Equal(t, "https://auth2.example.com/token", stored.TokenURL)
	require.Equal(t, "", stored.ClientSecret)
	require.Equal(t, "code-2", stored.Code)
}

func keys(m map[string]string) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCredentialHeadersMaskedInEveryRead: a header that looks like a credential is masked for
// every reader (viewer included) in the listing, one webhook, the answers of create, update and
// duplicate, and the history, although it is not marked secret; the mask written back keeps it.
func TestCredentialHeadersMaskedInEveryRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	values := []string{"Bearer live-abc", "sid=cookie-abc", "tok-abc", "key-abc", "pw-abc"}
	body := hookBody("Creds")
	body["headers"] = []map[string]any{
		{"key": "Authorization", "value": values[0]}, {"key": "Cookie", "value": values[1]},
		{"key": "X-Customer-Token", "value": values[2]}, {"key": "X-Api-Key", "value": values[3]},
		{"key": "X-Password", "value": values[4]}, {"key": "X-Plain", "value": "visible"},
	}
	noneOf := func(what string, v any) {
		t.Helper()
		s := fmt.Sprint(v)
		for _, secret := range values {
			require.NotContains(t, s, secret, what)
		}
	}
	created := e.must(201, "POST", "/v1/webhooks", e.manager, body)
	noneOf("create", created)
	require.Contains(t, fmt.Sprint(created), "visible")
	id := int64(created["id"].(float64))
	hs := created["headers"].([]any)
	for i := range 5 {
		require.Equal(t, webhook.Mask, hs[i].(map[string]any)["value"])
	}
	for _, tok := range []string{e.viewer, e.manager, e.owner} {
		noneOf("list", e.must(200, "GET", "/v1/webhooks", tok, nil))
		noneOf("get", e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d", id), tok, nil))
	}
	noneOf("patch", e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", id), e.manager, map[string]any{"name": "Creds 2"}))
	noneOf("duplicate", e.must(201, "POST", fmt.Sprintf("/v1/webhooks/%d/duplicate", id), e.manager, nil))
	noneOf("audit", e.must(200, "GET", "/v1/audit", e.viewer, nil))

	// The mask written back (same URL) keeps each stored value.
	put := hookBody("Creds 3")
	put["headers"] = created["headers"]
	e.must(200, "PUT", fmt.Sprintf("/v1/webhooks/%d", id), e.owner, put)
	stored, err := e.st.WebhookGet(e.ctx, "acme", id)
	require.NoError(t, err)
	for i, v := range values {
		require.Equal(t, v, stored.Headers[i].Value)
	}

	// History: a recorded request with those headers in clear (as an older writer stored them).
	d := e.newDelivery(stored, "failed", time.Now())
	_, err = e.pool.Exec(e.ctx, `UPDATE walhook.attempt SET request_headers = $2 WHERE delivery_id = $1`, d,
		map[string]string{"Cookie": values[1], "X-Customer-Token": values[2], "X-Password": values[4], "X-Plain": "visible"})
	require.NoError(t, err)
	got := e.must(200, "GET", "/v1/deliveries/"+e.pub(stored.CompanyID, d), e.viewer, nil)
	noneOf("history", got)
	require.Contains(t, fmt.Sprint(got), "visible")
}

// TestOAuthExtraParamsHidden: an extra parameter marked secret or with a credential-looking key
// (password, client_assertion, api_key) is masked in the answers of create, update, one
// credential and the listing, for every reader, with its secret flag as given; the mask sent back
// keeps the stored value while the token URL names the same destination, and is refused (422
// naming the parameter, nothing stored) when it does not.
func TestOAuthExtraParamsHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	values := []string{"pw-hunter2", "jwt-eyJhbGciOi", "key-abc123", "marked-secret-value"}
	params := []map[string]any{
		{"key": "password", "value": values[0]}, {"key": "client_assertion", "value": values[1]},
		{"key": "api_key", "value": values[2]}, {"key": "tenant", "value": values[3], "secret": true},
		{"key": "audience", "value": "https://api.example.com"},
	}
	body := map[string]any{"name": "CRM", "token_url": "https://auth.example.com/token", "grant_type": "client_credentials",
		"client_id": "cid", "client_secret": "cs", "extra_params": params}
	noneOf := func(what string, v any) {
		t.Helper()
		s := fmt.Sprint(v)
		for _, secret := range values {
			require.NotContains(t, s, secret, what)
		}
	}
	want := []any{
		map[string]any{"key": "password", "value": webhook.Mask}, map[string]any{"key": "client_assertion", "value": webhook.Mask},
		map[string]any{"key": "api_key", "value": webhook.Mask}, map[string]any{"key": "tenant", "value": webhook.Mask, "secret": true},
		map[string]any{"key": "audience", "value": "https://api.example.com"},
	}
	created := e.must(201, "POST", "/v1/oauth", e.manager, body)
	noneOf("create", created)
	require.Equal(t, want, created["extra_params"])
	id := int64(created["id"].(float64))
	path := fmt.Sprintf("/v1/oauth/%d", id)
	for _, tok := range []string{e.viewer, e.manager, e.owner} {
		noneOf("list", e.must(200, "GET", "/v1/oauth", tok, nil))
		got := e.must(200, "GET", path, tok, nil)
		noneOf("get", got)
		require.Equal(t, want, got["extra_params"])
	}
	patched := e.must(200, "PATCH", path, e.manager, map[string]any{"name": "CRM 2"})
	noneOf("patch", patched)
	require.Equal(t, want, patched["extra_params"], "PATCH without extra_params keeps them")
	noneOf("audit", e.must(200, "GET", "/v1/audit", e.viewer, nil))
	stored := func() webhook.OAuthCredential {
		got, err := e.st.OAuthCredentialGet(e.ctx, "acme", id)
		require.NoError(t, err)
		return got
	}
	wantStored := []webhook.KeyValue{
		{Key: "password", Value: values[0]}, {Key: "client_assertion", Value: values[1]},
		{Key: "api_key", Value: values[2]}, {Key: "tenant", Value: values[3], Secret: true},
		{Key: "audience", Value: "https://api.example.com"},
	}
	require.Equal(t, wantStored, stored().ExtraParams)

	// The answer written back (same destination, written differently) keeps every value.
	put := map[string]any{"name": "CRM 3", "token_url": "HTTPS://auth.example.com:443/token", "grant_type": "client_credentials",
		"client_id": "cid", "client_secret": webhook.Mask, "extra_params": created["extra_params"]}
	noneOf("put", e.must(200, "PUT", path, e.owner, put))
	require.Equal(t, wantStored, stored().ExtraParams)

	// A new token URL with the masks: each kept value named, nothing stored.
	put["token_url"] = "https://attacker.example.net/token"
	r := e.do("PUT", path, e.owner, put)
	require.Equal(t, 422, r.status, "%s", r.raw)
	fe := r.fieldErrors(t)
	require.Len(t, fe, 5, "%s", r.raw)
	require.Contains(t, fe["client_secret"], "token URL changed")
	for i := range 4 {
		require.Contains(t, fe[fmt.Sprintf("extra_params[%d].value", i)], "token URL changed")
	}
	r = e.do("PATCH", path, e.manager, map[string]any{"token_url": "https://attacker.example.net/token"})
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Len(t, r.fieldErrors(t), 5, "%s", r.raw)
	require.Equal(t, "https://auth.example.com:443/token", strings.ToLower(stored().TokenURL))
	require.Equal(t, wantStored, stored().ExtraParams)

	// The mask under a key with no hidden value stored, or a secret left empty with none: refused.
	for _, p := range []map[string]any{
		{"key": "audience", "value": webhook.Mask}, {"key": "new_password", "value": webhook.Mask},
		{"key": "other", "value": "", "secret": true}, {"key": "Password", "value": webhook.Mask},
	} {
		r = e.do("PATCH", path, e.manager, map[string]any{"extra_params": []map[string]any{p}})
		require.Equal(t, 422, r.status, "%v: %s", p, r.raw)
		require.Contains(t, r.fieldErrors(t)["extra_params[0].value"], "is required", "%v", p)
	}
	require.Equal(t, wantStored, stored().ExtraParams)

	// Given again with the new URL: stored; the secret flag comes off when the user takes it off
	// (the value then shows, its key not looking like a credential).
	e.must(200, "PATCH", path, e.manager, map[string]any{"token_url": "https://auth2.example.com/token", "client_secret": "cs-2", "extra_params": []map[string]any{
		{"key": "password", "value": "pw-2"}, {"key": "tenant", "value": "acme-tenant"},
	}})
	require.Equal(t, []webhook.KeyValue{{Key: "password", Value: "pw-2"}, {Key: "tenant", Value: "acme-tenant"}}, stored().ExtraParams)
	got := e.must(200, "GET", path, e.viewer, nil)
	require.Equal(t, []any{map[string]any{"key": "password", "value": webhook.Mask}, map[string]any{"key": "tenant", "value": "acme-tenant"}}, got["extra_params"])
}

// TestKeptSecretStaysHidden: the mask sent back with the secret flag taken off keeps the stored
// value and its flag — unmarking a kept value would answer it in clear — for a header and an
// extra parameter alike. Typing a new value with the flag off is how a value stops being secret.
func TestKeptSecretStaysHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("Kept", func(w *webhook.Webhook) {
		w.Headers = []webhook.Header{{Key: "X-Signing", Value: "stored-header-secret", Secret: true}}
	})
	hp := fmt.Sprintf("/v1/webhooks/%d", w.ID)
	got := e.must(200, "PATCH", hp, e.manager, map[string]any{"headers": []map[string]any{{"key": "X-Signing", "value": webhook.Mask, "secret": false}}})
	require.NotContains(t, fmt.Sprint(got), "stored-header-secret")
	require.Equal(t, []any{map[string]any{"key": "X-Signing", "value": webhook.Mask, "secret": true}}, got["headers"])
	require.NotContains(t, fmt.Sprint(e.must(200, "GET", hp, e.viewer, nil)), "stored-header-secret")

	c := e.must(201, "POST", "/v1/oauth", e.manager, map[string]any{
		"name": "CRM", "token_url": "https://auth.example.com/token", "grant_type": "client_credentials",
		"client_id": "cid", "client_secret": "cs", "extra_params": []map[string]any{{"key": "tenant", "value": "stored-param-secret", "secret": true}},
	})
	op := fmt.Sprintf("/v1/oauth/%d", int64(c["id"].(float64)))
	got = e.must(200, "PATCH", op, e.manager, map[string]any{"extra_params": []map[string]any{{"key": "tenant", "value": webhook.Mask, "secret": false}}})
	require.NotContains(t, fmt.Sprint(got), "stored-param-secret")
	require.Equal(t, []any{map[string]any{"key": "tenant", "value": webhook.Mask, "secret": true}}, got["extra_params"])
	require.NotContains(t, fmt.Sprint(e.must(200, "GET", op, e.viewer, nil)), "stored-param-secret")

	got = e.must(200, "PATCH", op, e.manager, map[string]any{"extra_params": []map[string]any{{"key": "tenant", "value": "acme", "secret": false}}})
	require.Equal(t, []any{map[string]any{"key": "tenant", "value": "acme"}}, got["extra_params"], "a new value typed unmarked is plain")
}
