package admin

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWebhookValidation sends one invalid webhook per rule and checks the field and message of the
// 422 problem, and that nothing was written.
func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	hdr := func(k, v string) map[string]any {
		return map[string]any{"headers": []map[string]any{{"key": k, "value": v}}}
	}
	for _, c := range []fieldCase{
		{"name missing", map[string]any{"name": ""}, "name", "is required"},
		{"name blank", map[string]any{"name": "   "}, "name", "is required"},
		{"name too long", map[string]any{"name": strings.Repeat("é", 101)}, "name", "at most 100 characters"},
		{"url missing", map[string]any{"url": ""}, "url", "is required"},
		{"url relative", map[string]any{"url": "/hooks"}, "url", "absolute http or https"},
		{"url ftp", map[string]any{"url": "ftp://example.com/x"}, "url", "absolute http or https"},
		{"url no host", map[string]any{"url": "https:///path"}, "url", "must have a host"},
		{"url userinfo", map[string]any{"url": "https://user:pw@example.com/"}, "url", "user name or password"},
		{"url too long", map[string]any{"url": "https://example.com/" + strings.Repeat("a", 2048)}, "url", "at most 2048"},
		{"url spaces", map[string]any{"url": "https://example.com/a b"}, "url", "spaces or control"},
		{"url private ip", map[string]any{"url": "http://10.1.2.3/hook"}, "url", "private, loopback or link-local"},
		{"url metadata ip", map[string]any{"url": "http://169.254.169.254/latest"}, "url", "private, loopback or link-local"},
		{"url bad port", map[string]any{"url": "https://example.com:0/"}, "url", "port between 1 and 65535"},
		{"method missing", map[string]any{"method": ""}, "method", "is required"},
		{"method unknown", map[string]any{"method": "TRACE"}, "method", "one of GET, POST, PUT, PATCH, DELETE"},
		{"method lower case", map[string]any{"method": "post"}, "method", "one of GET, POST, PUT, PATCH, DELETE"},
		{"events missing", map[string]any{"event": ""}, "events", "at least one trigger event is required"},
		{"event unknown", map[string]any{"event": "deal.won"}, "event", `unknown trigger event "deal.won"`},
		{"events empty", map[string]any{"event": nil, "events": []string{}}, "events", "at least one trigger event is required"},
		{"events unknown", map[string]any{"event": nil, "events": []string{"contact.created", "deal.won"}}, "events[1]", `unknown trigger event "deal.won"`},
		{"events duplicate", map[string]any{"event": nil, "events": []string{"contact.created", "contact.updated", "contact.created"}},
			"events[2]", `duplicate trigger event "contact.created"`},
		{"events empty key", map[string]any{"event": nil, "events": []string{""}}, "events[0]", "is required"},
		{"too many events", map[string]any{"event": nil, "events": func() []string {
			out := make([]string, 51)
			for i := range out {
				out[i] = "contact.created"
			}
			return out
		}()}, "events", "at most 50 trigger events"},
		{"event and events disagree", map[string]any{"event": "contact.updated", "events": []string{"contact.created", "contact.updated"}},
			"event", "must be the first of events"},
		{"param not common to the events", map[string]any{"event": nil, "events": []string{"contact.created", "contact.updated"},
			"raw_data": false, "params": []map[string]any{{"key": "id", "path": "data.id"}, {"key": "e", "path": "data.email"}}},
			"params[1].path", "data.email is not a field of the trigger event contact.updated"},
		{"param not in the sample", map[string]any{"raw_data": false, "params": []map[string]any{{"key": "e", "path": "data.phone"}}},
			"params[0].path", "data.phone is not a field of the trigger event contact.created"},
		{"header name not a token", hdr("X Bad", "v"), "headers[0].key", "valid header name"},
		{"header name empty", hdr("", "v"), "headers[0].key", "is required"},
		{"header value CRLF", hdr("X-A", "a\r\nInjected: 1"), "headers[0].value", "CR, LF or NUL"},
		{"header Host", hdr("Host", "evil"), "headers[0].key", "set by walhook"},
		{"header Content-Length", hdr("content-length", "1"), "headers[0].key", "set by walhook"},
		{"header Transfer-Encoding", hdr("Transfer-Encoding", "chunked"), "headers[0].key", "set by walhook"},
		{"header webhook-signature", hdr("Webhook-Signature", "v1,x"), "headers[0].key", "set by walhook"},
		{"header Connection", hdr("Connection", "close"), "headers[0].key", "set by walhook"},
		{"header Content-Type", hdr("Content-Type", "text/plain"), "headers[0].key", "set by walhook"},
		{"header User-Agent", hdr("user-agent", "curl/8"), "headers[0].key", "set by walhook"},
		{"header duplicate", map[string]any{"headers": []map[string]any{{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}}},
			"headers[1].key", "duplicate header"},
		{"too many headers", map[string]any{"headers": many(51, func(i int) map[string]any {
			return map[string]any{"key": fmt.Sprintf("X-%d", i), "value": "v"}
		})}, "headers", "at most 50 headers"},
		{"secret header without value", map[string]any{"headers": []map[string]any{{"key": "X-Key", "value": "", "secret": true}}},
			"headers[0].value", "is required"},
		{"params needed without raw data", map[string]any{"raw_data": false}, "params", "at least one parameter"},
		{"param path invalid", map[string]any{"params": []map[string]any{{"key": "e", "path": "data..email"}}}, "params[0].path", "dotted path"},
		{"param path outside envelope", map[string]any{"params": []map[string]any{{"key": "e", "path": "row.email"}}}, "params[0].path", "dotted path"},
		{"param key missing", map[string]any{"params": []map[string]any{{"key": "", "path": "data.email"}}}, "params[0].key", "is required"},
		{"param key duplicate", map[string]any{"params": []map[string]any{{"key": "e", "path": "data.a"}, {"key": "e", "path": "data.b"}}},
			"params[1].key", "duplicate parameter"},
		{"too many params", map[string]any{"params": many(101, func(i int) map[string]any {
			return map[string]any{"key": fmt.Sprintf("k%d", i), "path": "data.x"}
		})}, "params", "at most 100 parameters"},
		{"rate limit zero", map[string]any{"rate_limit": 0}, "rate_limit", "from 1 to 1000"},
		{"rate limit too high", map[string]any{"rate_limit": 1001}, "rate_limit", "from 1 to 1000"},
	} {
		body := e.requireInvalid(t, "/v1/webhooks", hookBody("valid"), c)
		// The unsaved test validates the same way.
		require.Equal(t, 422, e.do("POST", "/v1/webhooks/test", e.owner, body).status, c.name)
	}
	// Authorization is the credential's when one is attached.
	cred := e.newOAuth("acme", "c")
	body := hookBody("valid")
	body["oauth_id"] = cred.ID
	body["headers"] = []map[string]any{{"key": "Authorization", "value": "Bearer x"}}
	require.Contains(t, e.do("POST", "/v1/webhooks", e.owner, body).fieldErrors(t)["headers[0].key"], "OAuth credential")
	// Several invalid fields are all named at once.
	r := e.do("POST", "/v1/webhooks", e.owner, map[string]any{"name": "", "url": "x", "method": "GO", "event": ""})
	require.Len(t, r.fieldErrors(t), 4)

	list, err := e.st.WebhookList(e.ctx, "acme", 0, 100)
	require.NoError(t, err)
	require.Empty(t, list, "nothing written")

	// The allow-list lets loopback through (the tests' receivers live there).
	body = hookBody("local")
	body["url"] = "http://127.0.0.1:9/hook"
	e.must(201, "POST", "/v1/webhooks", e.owner, body)
}

func TestOAuthValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, c := range []fieldCase{
		{"name missing", map[string]any{"name": ""}, "name", "is required"},
		{"token url", map[string]any{"token_url": "mailto:x@example.com"}, "token_url", "absolute http or https"},
		{"method", map[string]any{"method": "PUT"}, "method", "POST or GET"},
		{"grant missing", map[string]any{"grant_type": ""}, "grant_type", "is required"},
		{"grant unknown", map[string]any{"grant_type": "password"}, "grant_type", "one of authorization_code"},
		{"client credentials need a secret", map[string]any{"client_secret": ""}, "client_secret", "client_credentials"},
		{"client credentials need an id", map[string]any{"client_id": ""}, "client_id", "client_credentials"},
		{"authorization code needs a code", map[string]any{"grant_type": "authorization_code"}, "code", "authorization_code"},
		{"refresh grant needs a token", map[string]any{"grant_type": "refresh_token"}, "refresh_token", "refresh_token grant"},
		{"extra param reserved", map[string]any{"extra_params": []map[string]any{{"key": "client_secret", "value": "x"}}}, "extra_params[0].key", "its own field"},
		{"secret with newline", map[string]any{"client_secret": "a\nb"}, "client_secret", "CR, LF or NUL"},
	} {
		e.requireInvalid(t, "/v1/oauth", oauthBody("c"), c)
	}
	list, err := e.st.OAuthCredentialList(e.ctx, "acme")
	require.NoError(t, err)
	require.Empty(t, list)
}

// fieldCase is one invalid body: mod's fields set over a valid body, and the field the 422
// problem must name, with a message that contains msg.
type fieldCase struct {
	name  string
	mod   map[string]any
	field string
	msg   string
}

// requireInvalid sends valid with c.mod set over it to path as acme's owner, requires the
// validation problem c names, and returns the body it sent.
func (e *env) requireInvalid(t *testing.T, path string, valid map[string]any, c fieldCase) map[string]any {
	t.Helper()
	body := with(valid, c.mod)
	r := e.do("POST", path, e.owner, body)
	require.Equal(t, 422, r.status, "%s: %s", c.name, r.raw)
	require.Equal(t, "urn:walhook:problem:validation", r.obj(t)["type"], c.name)
	fe := r.fieldErrors(t)
	require.Contains(t, fe, c.field, "%s: %s", c.name, r.raw)
	require.Contains(t, fe[c.field], c.msg, c.name)
	return body
}
