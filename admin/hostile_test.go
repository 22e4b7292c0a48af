package admin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// hostileCase is one bad request and what it must answer.
type hostileCase struct {
	name         string
	method, path string
	// body is nil (none), a string or []byte (sent as is) or a value encoded as JSON.
	body any
	// ct is the Content-Type: "" → application/json when there is a body, "-" → none.
	ct string
	// token is the bearer token: "" → acme's owner, "-" → none.
	token  string
	status int
	// field is the field errors[] must name; "" when the problem is about the whole request.
	field string
}

// TestHostileRequests sends well over a hundred named bad requests to an admin server configured
// like production (no private network allowed) and requires for each the right 4xx as
// application/problem+json, the field named where there is one, not one row more or less in any
// walhook table, and a good request answered right after it. Another company's ids in paths are
// covered route by route in TestPermissionMatrix; here they also travel inside bodies.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	strict := New(Config{API: true, TokenMaxLifetime: 90 * 24 * time.Hour}, e.st, e.tester, zerolog.Nop(), prometheus.NewRegistry())
	srv := httptest.NewServer(strict.Handler())
	t.Cleanup(srv.Close)

	// Fixtures: objects of acme and of the other company.
	hook := e.newWebhook("acme-hook", func(w *webhook.Webhook) {
		w.Headers = []webhook.Header{{Key: "X-Api-Key", Value: "stored-secret", Secret: true}}
	})
	e.newWebhook("acme-hook-2", nil)
	cred := e.newOAuth("acme", "acme-cred")
	acmeDelivery := e.newDelivery(hook, "failed", time.Now())
	acmePub := e.pub("acme", acmeDelivery)
	otherHook, err := e.st.WebhookCreate(e.ctx, webhook.Webhook{CompanyID: "other", Name: "other-hook",
		URL: "https://hooks.example.com/other", Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true}, &e.otherM.ID)
	require.NoError(t, err)
	_, err = e.st.WebhookCreate(e.ctx, webhook.Webhook{CompanyID: "other", Name: "other-hook-2",
		URL: "https://hooks.example.com/other", Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true}, &e.otherM.ID)
	require.NoError(t, err)
	otherCred := e.newOAuth("other", "other-cred")
	otherDelivery := e.newDelivery(otherHook, "failed", time.Now())
	otherRole, err := e.st.RoleCreate(e.ctx, "other", "Other role")
	require.NoError(t, err)
	_, otherToken, err := e.st.APITokenCreate(e.ctx, "other", e.otherM.ID, "other", nil)
	require.NoError(t, err)

	// Cursors: a real one of acme's listing, one of the other company's, one of another listing.
	nextCursor := func(token string) string {
		m := e.must(200, "GET", "/v1/webhooks?limit=1", token, nil)
		require.NotNil(t, m["next_cursor"])
		return m["next_cursor"].(string)
	}
	acmeCursor, otherCursor := nextCursor(e.owner), nextCursor(e.other)
	auditCursor := encodeCursor(cursor{Kind: "audit", ID: 1})
	forged := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }

	// Bodies.
	good := func(mod map[string]any) map[string]any { return with(hookBody("hostile"), mod) }
	hdr := func(k, v string) map[string]any {
		return good(map[string]any{"headers": []map[string]any{{"key": k, "value": v}}})
	}
	param := func(k, p string) map[string]any {
		return good(map[string]any{"params": []map[string]any{{"key": k, "path": p}}})
	}
	oauth := func(mod map[string]any) map[string]any { return with(oauthBody("hostile-cred"), mod) }
	rawHook := func(inner string) string {
		return `{"name":"hostile","url":"https://hooks.example.com/in","method":"POST","event":"contact.created"` + inner + `}`
	}
	validJSON, err := json.Marshal(good(nil))
	require.NoError(t, err)

	const W, O, PC = "/v1/webhooks", "/v1/oauth", "/v1/platform/companies"
	pt := e.platform
	// A disabled company with a member, for the portal link refused.
	_, err = e.st.CompanyCreate(e.ctx, "gone", "Gone")
	require.NoError(t, err)
	goneM, err := e.st.MemberCreate(e.ctx, store.Member{CompanyID: "gone", Email: "m@gone.test"})
	require.NoError(t, err)
	_, err = e.st.CompanySetDisabled(e.ctx, "gone", true)
	require.NoError(t, err)
	hp := fmt.Sprintf("/v1/webhooks/%d", hook.ID)
	ohp := fmt.Sprintf("/v1/webhooks/%d", otherHook.ID)
	cases := []hostileCase{
		// Wrong JSON types.
		{name: "name is a number", method: "POST", path: W, body: good(map[string]any{"name": 42}), status: 400, field: "name"},
		{name: "url is a boolean", method: "POST", path: W, body: good(map[string]any{"url": true}), status: 400, field: "url"},
		{name: "method is an array", method: "POST", path: W, body: good(map[string]any{"method": []string{"POST"}}), status: 400, field: "method"},
		{name: "event is an object", method: "POST", path: W, body: good(map[string]any{"event": map[string]any{"key": "contact.created"}}), status: 400, field: "event"},
		{name: "active is a string", method: "POST", path: W, body: good(map[string]any{"active": "yes"}), status: 400, field: "active"},
		{name: "raw_data is a number", method: "POST", path: W, body: good(map[string]any{"raw_data": 1}), status: 400, field: "raw_data"},
		{name: "oauth_id is a string", method: "POST", path: W, body: good(map[string]any{"oauth_id": "1"}), status: 400, field: "oauth_id"},
		{name: "oauth_id is a fraction", method: "POST", path: W, body: rawHook(`,"oauth_id":1.5`), status: 400, field: "oauth_id"},
		{name: "oauth_id overflows int64", method: "POST", path: W, body: rawHook(`,"oauth_id":1e30`), status: 400, field: "oauth_id"},
		{name: "headers is an object", method: "POST", path: W, body: good(map[string]any{"headers": map[string]any{"X-A": "1"}}), status: 400, field: "headers"},
		{name: "header is a string", method: "POST", path: W, body: good(map[string]any{"headers": []string{"X-A: 1"}}), status: 400, field: "headers"},
		{name: "header secret is a string", method: "POST", path: W, body: good(map[string]any{"headers": []map[string]any{{"key": "X-A", "value": "v", "secret": "true"}}}), status: 400, field: "headers.secret"},
		{name: "params is a string", method: "POST", path: W, body: good(map[string]any{"params": "data.email"}), status: 400, field: "params"},
		{name: "PATCH active is null-ish string", method: "PATCH", path: hp, body: map[string]any{"active": "false"}, status: 400, field: "active"},

		// Malformed JSON.
		{name: "top-level array", method: "POST", path: W, body: "[" + string(validJSON) + "]", status: 400},
		{name: "top-level null", method: "POST", path: W, body: "null", status: 400},
		{name: "top-level null on PATCH", method: "PATCH", path: hp, body: "null", status: 400},
		{name: "top-level number", method: "POST", path: W, body: "42", status: 400},
		{name: "top-level string", method: "POST", path: W, body: `"hello"`, status: 400},
		{name: "trailing garbage", method: "POST", path: W, body: string(validJSON) + "garbage", status: 400},
		{name: "two objects", method: "POST", path: W, body: string(validJSON) + string(validJSON), status: 400},
		{name: "truncated JSON", method: "POST", path: W, body: string(validJSON[:len(validJSON)-5]), status: 400},
		{name: "single quotes", method: "POST", path: W, body: `{'name':'x'}`, status: 400},
		{name: "comment in JSON", method: "POST", path: W, body: `{/* x */"name":"x"}`, status: 400},
		{name: "empty body", method: "POST", path: W, body: "", status: 400},
		{name: "whitespace body", method: "POST", path: W, body: " \n\t ", status: 400},
		{name: "no body on PUT", method: "PUT", path: hp, status: 400},

		// Unknown and duplicate fields.
		{name: "unknown field secret", method: "POST", path: W, body: good(map[string]any{"secret": "whsec_mine"}), status: 400, field: "secret"},
		{name: "unknown field company_id", method: "POST", path: W, body: good(map[string]any{"company_id": "other"}), status: 400, field: "company_id"},
		{name: "unknown field id on PUT", method: "PUT", path: hp, body: good(map[string]any{"id": otherHook.ID}), status: 400, field: "id"},
		{name: "unknown field created_by", method: "POST", path: W, body: good(map[string]any{"created_by": e.otherM.ID}), status: 400, field: "created_by"},
		{name: "unknown nested header field", method: "POST", path: W, body: good(map[string]any{"headers": []map[string]any{{"key": "X-A", "value": "v", "encrypted": true}}}), status: 400, field: "encrypted"},
		{name: "duplicate JSON key", method: "POST", path: W, body: rawHook(`,"name":"second"`), status: 400, field: "name"},
		{name: "duplicate JSON key differing in case", method: "POST", path: W, body: rawHook(`,"URL":"http://169.254.169.254/"`), status: 400, field: "URL"},
		{name: "duplicate JSON key in a header", method: "POST", path: W, body: rawHook(`,"headers":[{"key":"X-A","value":"a","key":"Host"}]`), status: 400, field: "headers[0].key"},
		{name: "duplicate JSON key on PATCH", method: "PATCH", path: hp, body: `{"active":false,"active":true}`, status: 400, field: "active"},

		// Size.
		{name: "body over 1 MiB", method: "POST", path: W, body: good(map[string]any{"name": strings.Repeat("a", maxBody)}), status: 413},
		{name: "whitespace padding over 1 MiB", method: "POST", path: W, body: string(validJSON) + strings.Repeat(" ", maxBody), status: 413},
		{name: "OAuth body over 1 MiB", method: "POST", path: O, body: oauth(map[string]any{"scope": strings.Repeat("s", maxBody+1)}), status: 413},

		// Content types.
		{name: "content type text/plain", method: "POST", path: W, body: string(validJSON), ct: "text/plain", status: 415},
		{name: "content type missing", method: "POST", path: W, body: string(validJSON), ct: "-", status: 415},
		{name: "content type multipart", method: "POST", path: W, body: "--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--x--\r\n", ct: "multipart/form-data; boundary=x", status: 415},
		{name: "content type form", method: "POST", path: W, body: "name=x&url=https://example.com", ct: "application/x-www-form-urlencoded", status: 415},
		{name: "content type malformed", method: "POST", path: W, body: string(validJSON), ct: "application/json; charset", status: 415},
		{name: "content type xml", method: "POST", path: O, body: "<oauth/>", ct: "application/xml", status: 415},

		// Odd Unicode.
		{name: "invalid UTF-8 byte in name", method: "POST", path: W, body: []byte(strings.Replace(rawHook(""), "hostile", "a\xffb", 1)), status: 400},
		{name: "overlong encoding of slash", method: "POST", path: W, body: []byte(strings.Replace(rawHook(""), "hostile", "a\xc0\xafb", 1)), status: 400},
		{name: "surrogate half as raw bytes", method: "POST", path: W, body: []byte(strings.Replace(rawHook(""), "hostile", "\xed\xa0\x80", 1)), status: 400},
		{name: "NUL in name", method: "POST", path: W, body: good(map[string]any{"name": "a\x00b"}), status: 422, field: "name"},
		{name: "RTL override in name", method: "POST", path: W, body: good(map[string]any{"name": "invoice\u202egnp.exe"}), status: 422, field: "name"},
		{name: "zero-width only name", method: "POST", path: W, body: good(map[string]any{"name": "\u200b\u200c\u200d\ufeff"}), status: 422, field: "name"},
		{name: "control character in name", method: "POST", path: W, body: good(map[string]any{"name": "line\nbreak"}), status: 422, field: "name"},
		{name: "NUL in parameter key", method: "POST", path: W, body: param("e\x00", "data.email"), status: 422, field: "params[0].key"},
		{name: "NUL in event", method: "POST", path: W, body: good(map[string]any{"event": "contact.created\x00"}), status: 422, field: "event"},
		{name: "NUL in role name", method: "POST", path: "/v1/roles", body: map[string]any{"name": "r\x00"}, status: 422, field: "name"},
		{name: "RTL override in token name", method: "POST", path: "/v1/tokens", body: map[string]any{"name": "ci\u202e"}, status: 422, field: "name"},
		{name: "NUL in OAuth extra param", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "aud\x00", "value": "x"}}}), status: 422, field: "extra_params[0].key"},
		{name: "NUL in OAuth extra param value", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "aud", "value": "x\x00"}}}), status: 422, field: "extra_params[0].value"},
		{name: "OAuth extra param secret is a string", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "aud", "value": "x", "secret": "true"}}}), status: 400, field: "extra_params.secret"},
		{name: "OAuth extra param unknown field sealed", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "aud", "value": "x", "sealed": true}}}), status: 400, field: "sealed"},
		{name: "OAuth extra param mask with nothing stored", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "password", "value": "••••••"}}}), status: 422, field: "extra_params[0].value"},
		{name: "OAuth secret extra param left empty", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "tenant", "value": "", "secret": true}}}), status: 422, field: "extra_params[0].value"},

		// Lengths and counts.
		{name: "name of 101 characters", method: "POST", path: W, body: good(map[string]any{"name": strings.Repeat("n", 101)}), status: 422, field: "name"},
		{name: "url of 2049 characters", method: "POST", path: W, body: good(map[string]any{"url": "https://example.com/" + strings.Repeat("u", 2049-20)}), status: 422, field: "url"},
		{name: "51 headers", method: "POST", path: W, body: good(map[string]any{"headers": many(51, func(i int) map[string]any {
			return map[string]any{"key": fmt.Sprintf("X-H%d", i), "value": "v"}
		})}), status: 422, field: "headers"},
		{name: "101 params", method: "POST", path: W, body: good(map[string]any{"params": many(101, func(i int) map[string]any {
			return map[string]any{"key": fmt.Sprintf("p%d", i), "path": "data.x"}
		})}), status: 422, field: "params"},
		{name: "header value over 8 KiB", method: "POST", path: W, body: hdr("X-Big", strings.Repeat("v", 8193)), status: 422, field: "headers[0].value"},
		{name: "role name of 101 characters", method: "POST", path: "/v1/roles", body: map[string]any{"name": strings.Repeat("r", 101)}, status: 422, field: "name"},
		{name: "OAuth name of 101 characters", method: "POST", path: O, body: oauth(map[string]any{"name": strings.Repeat("o", 101)}), status: 422, field: "name"},
		{name: "OAuth token URL of 2049 characters", method: "POST", path: O, body: oauth(map[string]any{"token_url": "https://auth.example.com/" + strings.Repeat("t", 2049-25)}), status: 422, field: "token_url"},
		{name: "OAuth secret over 4 KiB", method: "POST", path: O, body: oauth(map[string]any{"client_secret": strings.Repeat("s", 4097)}), status: 422, field: "client_secret"},
		{name: "51 OAuth extra params", method: "POST", path: O, body: oauth(map[string]any{"extra_params": many(51, func(i int) map[string]any {
			return map[string]any{"key": fmt.Sprintf("k%d", i), "value": "v"}
		})}), status: 422, field: "extra_params"},

		// Private and odd addresses.
		{name: "url loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://127.0.0.1/"}), status: 422, field: "url"},
		{name: "url loopback other", method: "POST", path: W, body: good(map[string]any{"url": "http://127.8.9.10:8080/x"}), status: 422, field: "url"},
		{name: "url RFC 1918 10/8", method: "POST", path: W, body: good(map[string]any{"url": "http://10.0.0.1/"}), status: 422, field: "url"},
		{name: "url RFC 1918 172.16/12", method: "POST", path: W, body: good(map[string]any{"url": "http://172.16.0.1/"}), status: 422, field: "url"},
		{name: "url RFC 1918 192.168/16", method: "POST", path: W, body: good(map[string]any{"url": "http://192.168.1.1:8443/"}), status: 422, field: "url"},
		{name: "url cloud metadata", method: "POST", path: W, body: good(map[string]any{"url": "http://169.254.169.254/latest/meta-data/"}), status: 422, field: "url"},
		{name: "url CGNAT", method: "POST", path: W, body: good(map[string]any{"url": "http://100.64.0.1/"}), status: 422, field: "url"},
		{name: "url IPv6 loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://[::1]/"}), status: 422, field: "url"},
		{name: "url IPv6 unique-local", method: "POST", path: W, body: good(map[string]any{"url": "http://[fd00::1]/"}), status: 422, field: "url"},
		{name: "url IPv6 link-local with zone", method: "POST", path: W, body: good(map[string]any{"url": "http://[fe80::1%25eth0]/"}), status: 422, field: "url"},
		{name: "url IPv4-mapped loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://[::ffff:127.0.0.1]/"}), status: 422, field: "url"},
		{name: "url IPv4-mapped metadata", method: "POST", path: W, body: good(map[string]any{"url": "http://[::ffff:a9fe:a9fe]/"}), status: 422, field: "url"},
		{name: "url NAT64 loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://[64:ff9b::7f00:1]/"}), status: 422, field: "url"},
		{name: "url IPv4-compatible loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://[::7f00:1]/"}), status: 422, field: "url"},
		{name: "url IPv4-compatible dotted", method: "POST", path: W, body: good(map[string]any{"url": "http://[::127.0.0.1]:8080/"}), status: 422, field: "url"},
		{name: "url 6to4 loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://[2002:7f00:1::1]/"}), status: 422, field: "url"},
		{name: "url 6to4 metadata", method: "POST", path: W, body: good(map[string]any{"url": "http://[2002:a9fe:a9fe::]/latest/"}), status: 422, field: "url"},
		{name: "url local-use NAT64", method: "POST", path: W, body: good(map[string]any{"url": "http://[64:ff9b:1::7f00:1]/"}), status: 422, field: "url"},
		{name: "url NAT64 private", method: "POST", path: W, body: good(map[string]any{"url": "http://[64:ff9b::10.0.0.1]/"}), status: 422, field: "url"},
		{name: "url Teredo", method: "POST", path: W, body: good(map[string]any{"url": "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"}), status: 422, field: "url"},
		{name: "url ISATAP loopback", method: "POST", path: W, body: good(map[string]any{"url": "http://[2001:470:1f0b::5efe:7f00:1]/"}), status: 422, field: "url"},
		{name: "url site-local", method: "POST", path: W, body: good(map[string]any{"url": "http://[fec0::1]/"}), status: 422, field: "url"},
		{name: "url 6bone", method: "POST", path: W, body: good(map[string]any{"url": "http://[3ffe:b00::1]/"}), status: 422, field: "url"},
		{name: "url IPv6 discard", method: "POST", path: W, body: good(map[string]any{"url": "http://[100::1]/"}), status: 422, field: "url"},
		{name: "url IPv6 documentation", method: "POST", path: W, body: good(map[string]any{"url": "http://[2001:db8::1]/"}), status: 422, field: "url"},
		{name: "url ORCHIDv2", method: "POST", path: W, body: good(map[string]any{"url": "http://[2001:20::1]/"}), status: 422, field: "url"},
		{name: "url IPv6 outside 2000::/3", method: "POST", path: W, body: good(map[string]any{"url": "http://[4000::1]/"}), status: 422, field: "url"},
		{name: "url IPv4 documentation", method: "POST", path: W, body: good(map[string]any{"url": "http://192.0.2.10/"}), status: 422, field: "url"},
		{name: "url IPv4 benchmarking", method: "POST", path: W, body: good(map[string]any{"url": "http://198.18.0.1/"}), status: 422, field: "url"},
		{name: "token URL 6to4 loopback", method: "POST", path: O, body: oauth(map[string]any{"token_url": "http://[2002:7f00:1::1]/token"}), status: 422, field: "token_url"},
		{name: "token URL site-local", method: "POST", path: O, body: oauth(map[string]any{"token_url": "https://[fec0::1]/token"}), status: 422, field: "token_url"},
		{name: "unsaved test to IPv4-compatible loopback", method: "POST", path: W + "/test", body: good(map[string]any{"url": "http://[::7f00:1]/"}), status: 422, field: "url"},
		{name: "PATCH url to local-use NAT64", method: "PATCH", path: hp, body: map[string]any{"url": "http://[64:ff9b:1::a9fe:a9fe]/"}, status: 422, field: "url"},
		{name: "url unspecified", method: "POST", path: W, body: good(map[string]any{"url": "http://0.0.0.0/"}), status: 422, field: "url"},
		{name: "url IPv6 unspecified", method: "POST", path: W, body: good(map[string]any{"url": "http://[::]/"}), status: 422, field: "url"},
		{name: "url broadcast", method: "POST", path: W, body: good(map[string]any{"url": "http://255.255.255.255/"}), status: 422, field: "url"},
		{name: "url multicast", method: "POST", path: W, body: good(map[string]any{"url": "http://224.0.0.1/"}), status: 422, field: "url"},
		{name: "url decimal IPv4", method: "POST", path: W, body: good(map[string]any{"url": "http://2130706433/"}), status: 422, field: "url"},
		{name: "url hexadecimal IPv4", method: "POST", path: W, body: good(map[string]any{"url": "http://0x7f000001/"}), status: 422, field: "url"},
		{name: "url octal IPv4", method: "POST", path: W, body: good(map[string]any{"url": "http://0177.0.0.1/"}), status: 422, field: "url"},
		{name: "url short IPv4", method: "POST", path: W, body: good(map[string]any{"url": "http://127.1/"}), status: 422, field: "url"},
		{name: "url zero", method: "POST", path: W, body: good(map[string]any{"url": "http://0/"}), status: 422, field: "url"},
		{name: "url mixed hex dotted metadata", method: "POST", path: W, body: good(map[string]any{"url": "http://0xa9.0xfe.0xa9.0xfe/"}), status: 422, field: "url"},
		{name: "url file scheme", method: "POST", path: W, body: good(map[string]any{"url": "file:///etc/passwd"}), status: 422, field: "url"},
		{name: "url gopher scheme", method: "POST", path: W, body: good(map[string]any{"url": "gopher://example.com:25/_HELO"}), status: 422, field: "url"},
		{name: "url javascript scheme", method: "POST", path: W, body: good(map[string]any{"url": "javascript:alert(1)"}), status: 422, field: "url"},
		{name: "url userinfo", method: "POST", path: W, body: good(map[string]any{"url": "https://admin:pw@example.com/"}), status: 422, field: "url"},
		{name: "url CRLF", method: "POST", path: W, body: good(map[string]any{"url": "https://example.com/\r\nX-Injected: 1"}), status: 422, field: "url"},
		{name: "url SQL with spaces", method: "POST", path: W, body: good(map[string]any{"url": "https://example.com/' OR '1'='1"}), status: 422, field: "url"},
		{name: "token URL metadata", method: "POST", path: O, body: oauth(map[string]any{"token_url": "http://169.254.169.254/token"}), status: 422, field: "token_url"},
		{name: "token URL loopback", method: "POST", path: O, body: oauth(map[string]any{"token_url": "http://127.0.0.1:8080/token"}), status: 422, field: "token_url"},
		{name: "token URL decimal IPv4", method: "POST", path: O, body: oauth(map[string]any{"token_url": "http://2852039166/token"}), status: 422, field: "token_url"},
		{name: "token URL file scheme", method: "POST", path: O, body: oauth(map[string]any{"token_url": "file:///etc/shadow"}), status: 422, field: "token_url"},

		// Headers.
		{name: "header name with CR LF", method: "POST", path: W, body: hdr("X-A\r\nX-Injected", "1"), status: 422, field: "headers[0].key"},
		{name: "header name with LF", method: "POST", path: W, body: hdr("X-A\nB", "1"), status: 422, field: "headers[0].key"},
		{name: "header name with colon", method: "POST", path: W, body: hdr("X-A:", "1"), status: 422, field: "headers[0].key"},
		{name: "header name with space", method: "POST", path: W, body: hdr("X A", "1"), status: 422, field: "headers[0].key"},
		{name: "header name non-ASCII", method: "POST", path: W, body: hdr("X-Ä", "1"), status: 422, field: "headers[0].key"},
		{name: "header name SQL", method: "POST", path: W, body: hdr("X');DROP TABLE walhook.webhook;--", "1"), status: 422, field: "headers[0].key"},
		{name: "header value with CR LF", method: "POST", path: W, body: hdr("X-A", "1\r\nX-Injected: 2"), status: 422, field: "headers[0].value"},
		{name: "header value with LF", method: "POST", path: W, body: hdr("X-A", "1\nb"), status: 422, field: "headers[0].value"},
		{name: "header value with CR", method: "POST", path: W, body: hdr("X-A", "1\rb"), status: 422, field: "headers[0].value"},
		{name: "header value with NUL", method: "POST", path: W, body: hdr("X-A", "a\x00b"), status: 422, field: "headers[0].value"},
		{name: "header value SQL with CR LF", method: "POST", path: W, body: hdr("X-A", "'; DROP TABLE walhook.webhook; --\r\n"), status: 422, field: "headers[0].value"},
		{name: "header Host", method: "POST", path: W, body: hdr("Host", "internal.example"), status: 422, field: "headers[0].key"},
		{name: "header Content-Length", method: "POST", path: W, body: hdr("Content-Length", "0"), status: 422, field: "headers[0].key"},
		{name: "header Transfer-Encoding", method: "POST", path: W, body: hdr("transfer-encoding", "chunked"), status: 422, field: "headers[0].key"},
		{name: "header webhook-signature", method: "POST", path: W, body: hdr("webhook-signature", "v1,forged"), status: 422, field: "headers[0].key"},
		{name: "header webhook-id", method: "POST", path: W, body: hdr("Webhook-Id", "msg_forged"), status: 422, field: "headers[0].key"},
		{name: "duplicate header keys", method: "POST", path: W, body: good(map[string]any{"headers": []map[string]any{{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}}}), status: 422, field: "headers[1].key"},
		{name: "Authorization with OAuth", method: "POST", path: W, body: good(map[string]any{"oauth_id": cred.ID, "headers": []map[string]any{{"key": "authorization", "value": "Bearer x"}}}), status: 422, field: "headers[0].key"},
		{name: "secret header mask without stored value", method: "POST", path: W, body: good(map[string]any{"headers": []map[string]any{{"key": "X-New", "value": webhook.Mask, "secret": true}}}), status: 422, field: "headers[0].value"},

		// Params.
		{name: "duplicate param keys", method: "POST", path: W, body: good(map[string]any{"params": []map[string]any{{"key": "e", "path": "data.a"}, {"key": "e", "path": "data.b"}}}), status: 422, field: "params[1].key"},
		{name: "param path SQL", method: "POST", path: W, body: param("e", "data.email'; DROP TABLE walhook.event;--"), status: 422, field: "params[0].path"},
		{name: "param path traversal", method: "POST", path: W, body: param("e", "../../etc/passwd"), status: 422, field: "params[0].path"},
		{name: "param path JSONPath", method: "POST", path: W, body: param("e", "$.data[*]"), status: 422, field: "params[0].path"},
		{name: "params needed without raw data", method: "POST", path: W, body: good(map[string]any{"raw_data": false}), status: 422, field: "params"},

		// Events and methods of a webhook.
		{name: "unknown event", method: "POST", path: W, body: good(map[string]any{"event": "deal.won"}), status: 422, field: "event"},
		{name: "event SQL", method: "POST", path: W, body: good(map[string]any{"event": "contact.created' OR '1'='1"}), status: 422, field: "event"},
		{name: "unknown event on PATCH", method: "PATCH", path: hp, body: map[string]any{"event": "contact.deleted"}, status: 422, field: "event"},
		{name: "unknown event on the unsaved test", method: "POST", path: W + "/test", body: good(map[string]any{"event": "nope"}), status: 422, field: "event"},
		{name: "events is a string", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": "contact.created"}), status: 400, field: "events"},
		{name: "events of numbers", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []int{1, 2}}), status: 400, field: "events"},
		{name: "events of objects", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []map[string]any{{"key": "contact.created"}}}), status: 400, field: "events"},
		{name: "events empty", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []string{}}), status: 422, field: "events"},
		{name: "events null and no event", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": nil}), status: 422, field: "events"},
		{name: "events SQL", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []string{"contact.created", "contact.created' OR '1'='1"}}), status: 422, field: "events[1]"},
		{name: "NUL in events", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []string{"contact.created\x00"}}), status: 422, field: "events[0]"},
		{name: "events repeated", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []string{"contact.updated", "contact.created", "contact.updated"}}), status: 422, field: "events[2]"},
		{name: "events a thousand", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": strings.Split(strings.Repeat("contact.created,", 999)+"contact.created", ",")}), status: 422, field: "events"},
		{name: "events huge key", method: "POST", path: W, body: good(map[string]any{"event": nil, "events": []string{strings.Repeat("a", 100_000)}}), status: 422, field: "events[0]"},
		{name: "event and events disagree", method: "POST", path: W, body: good(map[string]any{"event": "contact.updated", "events": []string{"contact.created"}}), status: 422, field: "event"},
		{name: "unknown events on PATCH", method: "PATCH", path: hp, body: map[string]any{"events": []string{"contact.created", "deal.won"}}, status: 422, field: "events[1]"},
		{name: "events on another company's webhook", method: "PATCH", path: ohp, body: map[string]any{"events": []string{"contact.updated"}}, status: 404},
		{name: "webhook method TRACE", method: "POST", path: W, body: good(map[string]any{"method": "TRACE"}), status: 422, field: "method"},
		{name: "webhook method CONNECT", method: "POST", path: W, body: good(map[string]any{"method": "CONNECT"}), status: 422, field: "method"},
		{name: "webhook method lower case", method: "POST", path: W, body: good(map[string]any{"method": "post"}), status: 422, field: "method"},
		{name: "webhook method with CR LF", method: "POST", path: W, body: good(map[string]any{"method": "POST\r\nX: y"}), status: 422, field: "method"},

		// Another company's ids inside bodies.
		{name: "oauth_id of another company", method: "POST", path: W, body: good(map[string]any{"oauth_id": otherCred.ID}), status: 404, field: "oauth_id"},
		{name: "oauth_id of another company on PATCH", method: "PATCH", path: hp, body: map[string]any{"oauth_id": otherCred.ID}, status: 404, field: "oauth_id"},
		{name: "oauth_id of another company on the unsaved test", method: "POST", path: W + "/test", body: good(map[string]any{"oauth_id": otherCred.ID}), status: 404, field: "oauth_id"},
		{name: "oauth_id unknown", method: "POST", path: W, body: good(map[string]any{"oauth_id": 987654321}), status: 404, field: "oauth_id"},
		{name: "oauth_id negative", method: "POST", path: W, body: good(map[string]any{"oauth_id": -1}), status: 404, field: "oauth_id"},
		{name: "role_id of another company", method: "PATCH", path: fmt.Sprintf("/v1/members/%d", e.viewerM.ID), body: map[string]any{"role_id": otherRole.ID}, status: 404, field: "role_id"},
		{name: "role_id is a string", method: "PATCH", path: fmt.Sprintf("/v1/members/%d", e.viewerM.ID), body: map[string]any{"role_id": "1"}, status: 400, field: "role_id"},

		// Another company's ids and malformed ids in paths.
		{name: "GET another company's webhook", method: "GET", path: ohp, status: 404},
		{name: "PUT another company's webhook", method: "PUT", path: ohp, body: good(nil), status: 404},
		{name: "PATCH another company's webhook", method: "PATCH", path: ohp, body: map[string]any{"active": true}, status: 404},
		{name: "DELETE another company's webhook", method: "DELETE", path: ohp, status: 404},
		{name: "duplicate another company's webhook", method: "POST", path: ohp + "/duplicate", status: 404},
		{name: "rotate another company's secret", method: "POST", path: ohp + "/rotate-secret", status: 404},
		{name: "history of another company's webhook", method: "GET", path: ohp + "/deliveries", status: 404},
		{name: "bulk resync of another company's webhook", method: "POST", path: ohp + "/deliveries/resync", body: map[string]any{"status": "failed", "since": time.Now().Add(-time.Hour)}, status: 404},
		{name: "replay preview of another company's webhook", method: "POST", path: ohp + "/replay/preview", body: map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour)}, status: 404},
		{name: "replay of another company's webhook", method: "POST", path: ohp + "/replay", body: map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour)}, status: 404},
		{name: "another company's delivery", method: "GET", path: "/v1/deliveries/" + e.pub("other", otherDelivery), status: 404},
		{name: "resync another company's delivery", method: "POST", path: "/v1/deliveries/" + e.pub("other", otherDelivery) + "/resync", status: 404},
		{name: "another company's delivery named as if ours", method: "GET", path: "/v1/deliveries/" + e.pub("acme", otherDelivery), status: 404},
		{name: "another company's delivery by row id", method: "GET", path: fmt.Sprintf("/v1/deliveries/%d", otherDelivery), status: 404},
		{name: "delivery by row id", method: "GET", path: fmt.Sprintf("/v1/deliveries/%d", acmeDelivery), status: 404},
		{name: "resync delivery by row id", method: "POST", path: fmt.Sprintf("/v1/deliveries/%d/resync", acmeDelivery), status: 404},
		{name: "delivery by msg_ and row id", method: "GET", path: fmt.Sprintf("/v1/deliveries/msg_%d", acmeDelivery), status: 404},
		{name: "delivery public id upper case", method: "GET", path: "/v1/deliveries/msg_" + strings.ToUpper(acmePub[4:]), status: 404},
		{name: "delivery public id one character changed", method: "GET", path: "/v1/deliveries/" + acmePub[:10] + flip(acmePub[10]) + acmePub[11:], status: 404},
		{name: "delivery public id too long", method: "GET", path: "/v1/deliveries/" + acmePub + "a", status: 404},
		{name: "delivery public id too short", method: "GET", path: "/v1/deliveries/" + acmePub[:len(acmePub)-1], status: 404},
		{name: "delivery public id with another prefix", method: "GET", path: "/v1/deliveries/evt_" + acmePub[4:], status: 404},
		{name: "delivery public id without prefix", method: "GET", path: "/v1/deliveries/" + acmePub[4:], status: 404},
		{name: "delivery public id with NUL", method: "GET", path: "/v1/deliveries/" + acmePub + "%00", status: 404},
		{name: "delivery public id padded", method: "GET", path: "/v1/deliveries/" + acmePub + "%3D%3D%3D%3D%3D%3D", status: 404},
		{name: "another company's OAuth credential", method: "GET", path: fmt.Sprintf("/v1/oauth/%d", otherCred.ID), status: 404},
		{name: "PUT another company's OAuth credential", method: "PUT", path: fmt.Sprintf("/v1/oauth/%d", otherCred.ID), body: oauth(nil), status: 404},
		{name: "DELETE another company's OAuth credential", method: "DELETE", path: fmt.Sprintf("/v1/oauth/%d", otherCred.ID), status: 404},
		{name: "another company's role permissions", method: "PUT", path: fmt.Sprintf("/v1/roles/%d/permissions", otherRole.ID), body: map[string]any{"permissions": []string{"manage_webhooks"}}, status: 404},
		{name: "another company's member", method: "PATCH", path: fmt.Sprintf("/v1/members/%d", e.otherM.ID), body: map[string]any{"role_id": e.role.ID}, status: 404},
		{name: "revoke another company's token", method: "DELETE", path: fmt.Sprintf("/v1/tokens/%d", otherToken.ID), status: 404},
		{name: "path id with SQL", method: "GET", path: "/v1/webhooks/1;DROP%20TABLE%20walhook.webhook", status: 404},
		{name: "path id with quote", method: "DELETE", path: "/v1/webhooks/1'%20OR%20'1'='1", status: 404},
		{name: "path id negative", method: "GET", path: "/v1/webhooks/-1", status: 404},
		{name: "path id zero", method: "DELETE", path: "/v1/webhooks/0", status: 404},
		{name: "path id overflows int64", method: "GET", path: "/v1/webhooks/99999999999999999999", status: 404},
		{name: "path id hexadecimal", method: "GET", path: "/v1/webhooks/0x1", status: 404},
		{name: "path id exponent", method: "GET", path: "/v1/webhooks/1e3", status: 404},
		{name: "path id NUL", method: "GET", path: "/v1/webhooks/%00", status: 404},
		{name: "path id with plus", method: "GET", path: fmt.Sprintf("/v1/webhooks/+%d", hook.ID), status: 404},
		{name: "delivery id SQL", method: "POST", path: "/v1/deliveries/1;DELETE%20FROM%20walhook.delivery/resync", status: 404},
		{name: "delivery public id SQL", method: "POST", path: "/v1/deliveries/msg_'%20OR%20'1'='1/resync", status: 404},
		{name: "role id SQL", method: "PUT", path: "/v1/roles/1%20OR%201=1/permissions", body: map[string]any{"permissions": []string{}}, status: 404},

		// Query parameters.
		{name: "event filter SQL", method: "GET", path: W + "?event=" + url.QueryEscape("contact.created' OR '1'='1"), status: 400, field: "event"},
		{name: "event filter unknown", method: "GET", path: W + "?event=deal.won", status: 400, field: "event"},
		{name: "duplicate event parameter", method: "GET", path: W + "?event=contact.created&event=contact.updated", status: 400, field: "event"},
		{name: "duplicate limit parameter", method: "GET", path: W + "?limit=1&limit=500", status: 400, field: "limit"},
		{name: "fields without events", method: "GET", path: "/v1/events/fields", status: 400, field: "events"},
		{name: "fields events SQL", method: "GET", path: "/v1/events/fields?events=" + url.QueryEscape("contact.created' OR '1'='1"), status: 400, field: "events"},
		{name: "fields events repeated", method: "GET", path: "/v1/events/fields?events=contact.created,contact.created", status: 400, field: "events"},
		{name: "fields events too many", method: "GET", path: "/v1/events/fields?events=" + strings.Repeat("contact.created,", 50) + "contact.created", status: 400, field: "events"},
		{name: "fields events given twice", method: "GET", path: "/v1/events/fields?events=contact.created&events=contact.updated", status: 400, field: "events"},
		{name: "fields without a token", method: "GET", path: "/v1/events/fields?events=contact.created", token: "-", status: 401},
		{name: "duplicate cursor parameter", method: "GET", path: W + "?cursor=" + acmeCursor + "&cursor=" + acmeCursor, status: 400, field: "cursor"},
		{name: "malformed query escape", method: "GET", path: W + "?event=%zz", status: 400},
		{name: "limit zero", method: "GET", path: W + "?limit=0", status: 400, field: "limit"},
		{name: "limit 501", method: "GET", path: W + "?limit=501", status: 400, field: "limit"},
		{name: "limit SQL", method: "GET", path: W + "?limit=" + url.QueryEscape("1;DROP TABLE walhook.webhook"), status: 400, field: "limit"},
		{name: "active filter not a boolean", method: "GET", path: W + "?active=maybe", status: 400, field: "active"},
		{name: "sort SQL", method: "GET", path: W + "?sort=" + url.QueryEscape("name; DROP TABLE walhook.webhook"), status: 400, field: "sort"},
		{name: "last_status pending", method: "GET", path: W + "?last_status=pending", status: 400, field: "last_status"},
		{name: "cursor garbage", method: "GET", path: W + "?cursor=garbage!!", status: 400, field: "cursor"},
		{name: "cursor SQL", method: "GET", path: W + "?cursor=" + url.QueryEscape("' OR 1=1 --"), status: 400, field: "cursor"},
		{name: "cursor truncated", method: "GET", path: W + "?cursor=" + acmeCursor[:len(acmeCursor)-6], status: 400, field: "cursor"},
		{name: "cursor of another listing", method: "GET", path: W + "?cursor=" + auditCursor, status: 400, field: "cursor"},
		{name: "cursor of another sort", method: "GET", path: W + "?sort=last_sent&cursor=" + acmeCursor, status: 400, field: "cursor"},
		{name: "cursor of another company", method: "GET", path: W + "?cursor=" + otherCursor, status: 400, field: "cursor"},
		{name: "cursor too long", method: "GET", path: W + "?cursor=" + strings.Repeat("A", maxCursorLen+1), status: 400, field: "cursor"},
		{name: "cursor forged negative id", method: "GET", path: W + "?cursor=" + forged(`{"k":"webhooks:name","n":"a","i":-5}`), status: 400, field: "cursor"},
		{name: "cursor forged JSON array", method: "GET", path: W + "?cursor=" + forged(`[1,2]`), status: 400, field: "cursor"},
		{name: "webhooks cursor on history", method: "GET", path: hp + "/deliveries?cursor=" + acmeCursor, status: 400, field: "cursor"},
		{name: "history status unknown", method: "GET", path: hp + "/deliveries?status=done", status: 400, field: "status"},
		{name: "history since not a time", method: "GET", path: hp + "/deliveries?since=yesterday", status: 400, field: "since"},
		{name: "history until SQL", method: "GET", path: hp + "/deliveries?until=" + url.QueryEscape("now()'; --"), status: 400, field: "until"},
		{name: "history event not the webhook's", method: "GET", path: hp + "/deliveries?event=contact.updated", status: 400, field: "event"},
		{name: "history event SQL", method: "GET", path: hp + "/deliveries?event=" + url.QueryEscape("contact.created' OR '1'='1"), status: 400, field: "event"},
		{name: "history event_id row id", method: "GET", path: hp + "/deliveries?event_id=12", status: 400, field: "event_id"},
		{name: "history event_id upper case", method: "GET", path: hp + "/deliveries?event_id=evt_" + strings.Repeat("A", 32), status: 400, field: "event_id"},
		{name: "history event_id SQL", method: "GET", path: hp + "/deliveries?event_id=" + url.QueryEscape("evt_' OR payload->>'id' LIKE '%"), status: 400, field: "event_id"},
		{name: "history http_status 600", method: "GET", path: hp + "/deliveries?http_status=600", status: 400, field: "http_status"},
		{name: "history http_status 99", method: "GET", path: hp + "/deliveries?http_status=99", status: 400, field: "http_status"},
		{name: "history http_status 4x", method: "GET", path: hp + "/deliveries?http_status=4x", status: 400, field: "http_status"},
		{name: "history http_status 40x", method: "GET", path: hp + "/deliveries?http_status=40x", status: 400, field: "http_status"},
		{name: "history http_status signed", method: "GET", path: hp + "/deliveries?http_status=" + url.QueryEscape("+40"), status: 400, field: "http_status"},
		{name: "history http_status range", method: "GET", path: hp + "/deliveries?http_status=400-499", status: 400, field: "http_status"},
		{name: "history until before since", method: "GET", path: hp + "/deliveries?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", status: 400, field: "until"},
		{name: "history q empty", method: "GET", path: hp + "/deliveries?q=", status: 400, field: "q"},
		{name: "history q blank", method: "GET", path: hp + "/deliveries?q=%20%20", status: 400, field: "q"},
		{name: "history q too long", method: "GET", path: hp + "/deliveries?q=" + strings.Repeat("a", 201), status: 400, field: "q"},
		{name: "history q not UTF-8", method: "GET", path: hp + "/deliveries?q=%ff%fe", status: 400, field: "q"},
		{name: "history q NUL", method: "GET", path: hp + "/deliveries?q=a%00b", status: 400, field: "q"},
		{name: "stats bucket minute", method: "GET", path: hp + "/stats?bucket=minute", status: 400, field: "bucket"},
		{name: "stats since after until", method: "GET", path: hp + "/stats?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", status: 400, field: "until"},
		{name: "audit object_type SQL", method: "GET", path: "/v1/audit?object_type=" + url.QueryEscape("webhook' OR '1'='1"), status: 400, field: "object_type"},
		{name: "audit object_id not a number", method: "GET", path: "/v1/audit?object_id=abc", status: 400, field: "object_id"},
		{name: "audit cursor of another listing", method: "GET", path: "/v1/audit?cursor=" + acmeCursor, status: 400, field: "cursor"},
		{name: "test payload source unknown", method: "POST", path: hp + "/test?payload=" + url.QueryEscape("latest'--"), status: 400, field: "payload"},

		// Bulk resync.
		{name: "resync status succeeded", method: "POST", path: hp + "/deliveries/resync", body: map[string]any{"status": "succeeded", "since": time.Now().Add(-time.Hour)}, status: 422, field: "status"},
		{name: "resync since missing", method: "POST", path: hp + "/deliveries/resync", body: map[string]any{"status": "failed"}, status: 422, field: "since"},
		{name: "resync since after until", method: "POST", path: hp + "/deliveries/resync", body: map[string]any{"status": "failed", "since": time.Now(), "until": time.Now().Add(-time.Hour)}, status: 422, field: "until"},
		{name: "resync since is a number", method: "POST", path: hp + "/deliveries/resync", body: map[string]any{"status": "failed", "since": 1700000000}, status: 400},

		// Replay a window (the webhook is off, so a request that passed validation would be 409).
		{name: "replay mode missing", method: "POST", path: hp + "/replay", body: map[string]any{"since": time.Now().Add(-time.Hour)}, status: 422, field: "mode"},
		{name: "replay mode unknown", method: "POST", path: hp + "/replay/preview", body: map[string]any{"mode": "everything", "since": time.Now().Add(-time.Hour)}, status: 422, field: "mode"},
		{name: "replay since missing", method: "POST", path: hp + "/replay", body: map[string]any{"mode": "all"}, status: 422, field: "since"},
		{name: "replay since after until", method: "POST", path: hp + "/replay", body: map[string]any{"mode": "all", "since": time.Now(), "until": time.Now().Add(-time.Hour)}, status: 422, field: "until"},
		{name: "replay window too long", method: "POST", path: hp + "/replay", body: map[string]any{"mode": "all", "since": time.Now().Add(-32 * 24 * time.Hour)}, status: 422, field: "since"},
		{name: "replay since is a number", method: "POST", path: hp + "/replay", body: map[string]any{"mode": "all", "since": 1700000000}, status: 400},
		{name: "replay unknown field", method: "POST", path: hp + "/replay", body: map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour), "webhook_id": otherHook.ID}, status: 400, field: "webhook_id"},
		{name: "replay of an off webhook", method: "POST", path: hp + "/replay", body: map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour)}, status: 409},
		{name: "replay preview of an off webhook", method: "POST", path: hp + "/replay/preview", body: map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour)}, status: 409},

		// OAuth credentials.
		{name: "grant type password", method: "POST", path: O, body: oauth(map[string]any{"grant_type": "password"}), status: 422, field: "grant_type"},
		{name: "grant type missing", method: "POST", path: O, body: oauth(map[string]any{"grant_type": ""}), status: 422, field: "grant_type"},
		{name: "grant type SQL", method: "POST", path: O, body: oauth(map[string]any{"grant_type": "client_credentials' OR '1'='1"}), status: 422, field: "grant_type"},
		{name: "grant type is a number", method: "POST", path: O, body: oauth(map[string]any{"grant_type": 1}), status: 400, field: "grant_type"},
		{name: "OAuth method PUT", method: "POST", path: O, body: oauth(map[string]any{"method": "PUT"}), status: 422, field: "method"},
		{name: "OAuth method with CR LF", method: "POST", path: O, body: oauth(map[string]any{"method": "POST\r\n"}), status: 422, field: "method"},
		{name: "OAuth client secret with CR LF", method: "POST", path: O, body: oauth(map[string]any{"client_secret": "s\r\nX: y"}), status: 422, field: "client_secret"},
		{name: "OAuth scope with NUL", method: "POST", path: O, body: oauth(map[string]any{"scope": "read\x00"}), status: 422, field: "scope"},
		{name: "OAuth extra param reserved", method: "POST", path: O, body: oauth(map[string]any{"extra_params": []map[string]any{{"key": "grant_type", "value": "password"}}}), status: 422, field: "extra_params[0].key"},
		{name: "OAuth client secret is a number", method: "POST", path: O, body: oauth(map[string]any{"client_secret": 12345}), status: 400, field: "client_secret"},
		{name: "OAuth unknown field access_token", method: "POST", path: O, body: oauth(map[string]any{"access_token": "injected"}), status: 400, field: "access_token"},
		{name: "OAuth unknown field company_id", method: "POST", path: O, body: oauth(map[string]any{"company_id": "other"}), status: 400, field: "company_id"},
		{name: "OAuth authorization code without code", method: "POST", path: O, body: oauth(map[string]any{"grant_type": "authorization_code"}), status: 422, field: "code"},
		{name: "OAuth PATCH grant type unknown", method: "PATCH", path: fmt.Sprintf("/v1/oauth/%d", cred.ID), body: map[string]any{"grant_type": "implicit"}, status: 422, field: "grant_type"},

		// Roles, members, tokens.
		{name: "role permission unknown", method: "PUT", path: fmt.Sprintf("/v1/roles/%d/permissions", e.role.ID), body: map[string]any{"permissions": []string{"superuser"}}, status: 422, field: "permissions[0]"},
		{name: "role permission SQL", method: "PUT", path: fmt.Sprintf("/v1/roles/%d/permissions", e.role.ID), body: map[string]any{"permissions": []string{"manage_webhooks'; --"}}, status: 422, field: "permissions[0]"},
		{name: "role permissions null", method: "PUT", path: fmt.Sprintf("/v1/roles/%d/permissions", e.role.ID), body: map[string]any{"permissions": nil}, status: 422, field: "permissions"},
		{name: "role permissions a string", method: "PUT", path: fmt.Sprintf("/v1/roles/%d/permissions", e.role.ID), body: map[string]any{"permissions": "manage_webhooks"}, status: 400, field: "permissions"},
		{name: "new role with unknown permission", method: "POST", path: "/v1/roles", body: map[string]any{"name": "r", "permissions": []string{"owner"}}, status: 422, field: "permissions[0]"},
		{name: "new role named owner (the built-in role)", method: "POST", path: "/v1/roles", body: map[string]any{"name": "owner"}, status: 409, field: "name"},
		{name: "token expires_in_days negative", method: "POST", path: "/v1/tokens", body: map[string]any{"name": "t", "expires_in_days": -1}, status: 422, field: "expires_in_days"},
		{name: "token expires_in_days a string", method: "POST", path: "/v1/tokens", body: map[string]any{"name": "t", "expires_in_days": "30"}, status: 400, field: "expires_in_days"},
		{name: "token expires_in_days huge", method: "POST", path: "/v1/tokens", body: map[string]any{"name": "t", "expires_in_days": 1 << 40}, status: 422, field: "expires_in_days"},
		{name: "token unknown field member_id", method: "POST", path: "/v1/tokens", body: map[string]any{"name": "t", "member_id": e.otherM.ID}, status: 400, field: "member_id"},

		// Methods the API does not have.
		{name: "TRACE on the collection", method: "TRACE", path: W, status: 405},
		{name: "PUT on the collection", method: "PUT", path: W, body: good(nil), status: 405},
		{name: "DELETE on the collection", method: "DELETE", path: W, status: 405},
		{name: "POST on /v1/me", method: "POST", path: "/v1/me", body: map[string]any{}, status: 405},
		{name: "PATCH on roles", method: "PATCH", path: "/v1/roles", body: map[string]any{}, status: 405},
		{name: "DELETE a member", method: "DELETE", path: fmt.Sprintf("/v1/members/%d", e.viewerM.ID), status: 405},

		// Stored secrets never follow a new destination (the hook's X-Api-Key, cred's client secret).
		{name: "PATCH of the URL alone keeps a stored secret", method: "PATCH", path: hp, body: map[string]any{"url": "https://evil.example.net/in"}, status: 422, field: "headers[0].value"},
		{name: "PUT of a new URL with the mask", method: "PUT", path: hp, body: good(map[string]any{"url": "https://evil.example.net/in", "headers": []map[string]any{{"key": "X-Api-Key", "value": webhook.Mask, "secret": true}}}), status: 422, field: "headers[0].value"},
		{name: "PUT of a new path on the same host with the mask", method: "PUT", path: hp, body: good(map[string]any{"url": "https://hooks.example.com/in/other-tenant", "headers": []map[string]any{{"key": "X-Api-Key", "value": "", "secret": true}}}), status: 422, field: "headers[0].value"},
		{name: "test of the edited webhook with a new URL and the mask", method: "POST", path: hp + "/test", body: good(map[string]any{"url": "https://evil.example.net/in", "headers": []map[string]any{{"key": "x-api-key", "value": webhook.Mask}}}), status: 422, field: "headers[0].value"},
		{name: "test of the edited webhook with an array body", method: "POST", path: hp + "/test", body: "[]", status: 400},
		{name: "test of the edited webhook with an unknown field", method: "POST", path: hp + "/test", body: good(map[string]any{"secret": "whsec_x"}), status: 400, field: "secret"},
		{name: "OAuth PATCH of the token URL alone keeps the client secret", method: "PATCH", path: fmt.Sprintf("/v1/oauth/%d", cred.ID), body: map[string]any{"token_url": "https://evil.example.net/token"}, status: 422, field: "client_secret"},
		{name: "OAuth PUT of a new token URL with the mask", method: "PUT", path: fmt.Sprintf("/v1/oauth/%d", cred.ID), body: oauth(map[string]any{"name": "acme-cred", "token_url": "https://evil.example.net/token", "client_secret": webhook.Mask}), status: 422, field: "client_secret"},

		// Lifetimes (the list quotas are the 51 headers and 101 params above).
		{name: "token expires_in_days past the max lifetime", method: "POST", path: "/v1/tokens", body: map[string]any{"name": "t", "expires_in_days": 91}, status: 422, field: "expires_in_days"},

		// Sessions.
		{name: "logout with an unknown token", method: "POST", path: "/v1/logout", token: "whk_not-a-token", status: 401},
		{name: "logout without a token", method: "POST", path: "/v1/logout", token: "-", status: 401},
		{name: "login with a numeric code", method: "POST", path: "/v1/login", token: "-", body: map[string]any{"code": 5}, status: 400, field: "code"},
		{name: "login with an unknown code", method: "POST", path: "/v1/login", token: "-", body: map[string]any{"code": "whl_guess"}, status: 401},
		{name: "login with an unknown field", method: "POST", path: "/v1/login", token: "-", body: map[string]any{"code": "whl_guess", "member_id": 1}, status: 400, field: "member_id"},

		// Authentication.
		{name: "no token", method: "POST", path: W, body: good(nil), token: "-", status: 401},
		{name: "token SQL", method: "POST", path: W, body: good(nil), token: "' OR '1'='1", status: 401},
		{name: "token of a different shape", method: "GET", path: "/v1/me", token: strings.Repeat("x", 4096), status: 401},

		// The platform API (platform token unless said otherwise).
		{name: "platform: external_id is a number", method: "POST", path: PC, token: pt, body: map[string]any{"name": "N", "external_id": 7}, status: 400, field: "external_id"},
		{name: "platform: name is an array", method: "POST", path: PC, token: pt, body: map[string]any{"name": []string{"N"}, "external_id": "x"}, status: 400, field: "name"},
		{name: "platform: company unknown field", method: "POST", path: PC, token: pt, body: map[string]any{"name": "N", "external_id": "x", "id": "y"}, status: 400, field: "id"},
		{name: "platform: company top-level array", method: "POST", path: PC, token: pt, body: `[{"name":"N","external_id":"x"}]`, status: 400},
		{name: "platform: company body over 1 MiB", method: "POST", path: PC, token: pt, body: map[string]any{"name": strings.Repeat("n", maxBody), "external_id": "x"}, status: 413},
		{name: "platform: company as text/plain", method: "POST", path: PC, token: pt, body: `{"name":"N","external_id":"x"}`, ct: "text/plain", status: 415},
		{name: "platform: external_id missing", method: "POST", path: PC, token: pt, body: map[string]any{"name": "N"}, status: 422, field: "external_id"},
		{name: "platform: external_id too long", method: "POST", path: PC, token: pt, body: map[string]any{"name": "N", "external_id": strings.Repeat("x", 201)}, status: 422, field: "external_id"},
		{name: "platform: external_id with a newline", method: "POST", path: PC, token: pt, body: map[string]any{"name": "N", "external_id": "a\nb"}, status: 422, field: "external_id"},
		{name: "platform: external_id with a trailing space", method: "POST", path: PC, token: pt, body: map[string]any{"name": "N", "external_id": "acme "}, status: 422, field: "external_id"},
		{name: "platform: company name missing", method: "POST", path: PC, token: pt, body: map[string]any{"external_id": "x"}, status: 422, field: "name"},
		{name: "platform: duplicate external_id", method: "POST", path: PC, token: pt, body: map[string]any{"name": "Again", "external_id": "acme"}, status: 409, field: "external_id"},
		{name: "platform: rename to null", method: "PATCH", path: PC + "/acme", token: pt, body: map[string]any{"name": nil}, status: 422, field: "name"},
		{name: "platform: rename to a number", method: "PATCH", path: PC + "/acme", token: pt, body: map[string]any{"name": 1}, status: 400, field: "name"},
		{name: "platform: rename without a body", method: "PATCH", path: PC + "/acme", token: pt, status: 400},
		{name: "platform: rename an unknown company", method: "PATCH", path: PC + "/nope", token: pt, body: map[string]any{"name": "N"}, status: 404},
		{name: "platform: disable an unknown company", method: "POST", path: PC + "/nope/disable", token: pt, status: 404},
		{name: "platform: list companies with limit 0", method: "GET", path: PC + "?limit=0", token: pt, status: 400, field: "limit"},
		{name: "platform: list companies with limit twice", method: "GET", path: PC + "?limit=1&limit=2", token: pt, status: 400, field: "limit"},
		{name: "platform: list companies with a garbage cursor", method: "GET", path: PC + "?cursor=%%%", token: pt, status: 400},
		{name: "platform: list companies with a webhooks cursor", method: "GET", path: PC + "?cursor=" + acmeCursor, token: pt, status: 400, field: "cursor"},
		{name: "platform: member email is a number", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": 5}, status: 400, field: "email"},
		{name: "platform: member role is a number", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": "n@acme.test", "role": 1}, status: 400, field: "role"},
		{name: "platform: member role unknown", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": "n@acme.test", "role": "Pilots"}, status: 422, field: "role"},
		{name: "platform: member role of another company", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": "n@acme.test", "role": "Other role"}, status: 422, field: "role"},
		{name: "platform: member role empty", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": "n@acme.test", "role": ""}, status: 422, field: "role"},
		{name: "platform: member email not an address", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": "nobody"}, status: 422, field: "email"},
		{name: "platform: member email taken", method: "POST", path: PC + "/acme/members", token: pt, body: map[string]any{"email": "owner@acme.test"}, status: 409, field: "email"},
		{name: "platform: member of an unknown company", method: "POST", path: PC + "/nope/members", token: pt, body: map[string]any{"email": "n@acme.test"}, status: 404},
		{name: "platform: remove another company's member", method: "DELETE", path: fmt.Sprintf("%s/acme/members/%d", PC, e.otherM.ID), token: pt, status: 404},
		{name: "platform: remove member abc", method: "DELETE", path: PC + "/acme/members/abc", token: pt, status: 404},
		{name: "platform: remove member -1", method: "DELETE", path: PC + "/acme/members/-1", token: pt, status: 404},
		{name: "platform: portal link for another company's member", method: "POST", path: fmt.Sprintf("%s/acme/members/%d/portal-links", PC, e.otherM.ID), token: pt, status: 404},
		{name: "platform: portal link in an unknown company", method: "POST", path: fmt.Sprintf("%s/nope/members/%d/portal-links", PC, e.ownerM.ID), token: pt, status: 404},
		{name: "platform: portal link in a disabled company", method: "POST", path: fmt.Sprintf("%s/gone/members/%d/portal-links", PC, goneM.ID), token: pt, status: 409},
		{name: "platform: role named owner", method: "POST", path: PC + "/acme/roles", token: pt, body: map[string]any{"name": "owner"}, status: 409, field: "name"},
		{name: "platform: role name taken", method: "POST", path: PC + "/acme/roles", token: pt, body: map[string]any{"name": "Developers"}, status: 409, field: "name"},
		{name: "platform: role permissions is a string", method: "POST", path: PC + "/acme/roles", token: pt, body: map[string]any{"name": "R", "permissions": "manage_webhooks"}, status: 400, field: "permissions"},
		{name: "platform: role permission unknown", method: "POST", path: PC + "/acme/roles", token: pt, body: map[string]any{"name": "R", "permissions": []string{"root"}}, status: 422, field: "permissions[0]"},
		{name: "platform: role in an unknown company", method: "POST", path: PC + "/nope/roles", token: pt, body: map[string]any{"name": "R"}, status: 404},
		{name: "platform: remove the owner role", method: "DELETE", path: PC + "/acme/roles/owner", token: pt, status: 409},
		{name: "platform: remove an unknown role", method: "DELETE", path: PC + "/acme/roles/Pilots", token: pt, status: 404},
		{name: "platform: remove another company's role", method: "DELETE", path: PC + "/acme/roles/Other%20role", token: pt, status: 404},
		{name: "platform: PUT on companies", method: "PUT", path: PC, token: pt, body: map[string]any{}, status: 405},
		{name: "platform: DELETE a company", method: "DELETE", path: PC + "/acme", token: pt, status: 405},
		{name: "platform: company token on an unknown company", method: "GET", path: PC + "/nope", status: 403},
		{name: "platform: company token creates a company", method: "POST", path: PC, body: map[string]any{"name": "N", "external_id": "x"}, status: 403},
		{name: "platform: platform token reads webhooks", method: "GET", path: W, token: pt, status: 403},
		{name: "platform: platform token reads a webhook", method: "GET", path: hp, token: pt, status: 403},
		{name: "platform: platform token creates a webhook", method: "POST", path: W, token: pt, body: good(nil), status: 403},
		{name: "platform: unknown platform token", method: "GET", path: PC, token: "whp_not-a-token", status: 401},
		{name: "platform: no token", method: "GET", path: PC, token: "-", status: 401},
	}
	require.GreaterOrEqual(t, len(cases), 100)

	tables := walhookTables(t, e)
	names := map[string]bool{}
	for _, c := range cases {
		require.False(t, names[c.name], "two cases named %q", c.name)
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) { checkHostile(t, e, srv.URL, tables, c, hp) })
	}

	// SQL metacharacters in a valid name, header value and URL are data: stored and read back
	// verbatim, every table intact.
	tricky := "Robert'); DROP TABLE walhook.webhook;-- \"x\" \\ %_"
	b := good(map[string]any{"name": tricky, "url": "https://example.com/a';DROP--?q=1%27",
		"headers": []map[string]any{{"key": "X-Q", "value": "' OR 1=1; --"}}})
	st, _, raw := sendHostile(t, e, srv.URL, hostileCase{method: "POST", path: W, body: b})
	require.Equal(t, 201, st, "%s", raw)
	var created map[string]any
	require.NoError(t, json.Unmarshal(raw, &created))
	got := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d", int64(created["id"].(float64))), e.owner, nil)
	require.Equal(t, tricky, got["name"])
	require.Equal(t, "' OR 1=1; --", got["headers"].([]any)[0].(map[string]any)["value"])
	require.Len(t, walhookTables(t, e), len(tables))
}

// checkHostile sends one bad request and checks the answer, that nothing was stored and that a good
// request is answered afterwards.
func checkHostile(t *testing.T, e *env, base string, tables []string, c hostileCase, goodPath string) {
	before := rowCounts(t, e, tables)
	status, header, raw := sendHostile(t, e, base, c)
	require.Equal(t, c.status, status, "%s: %s", c.name, raw)
	if c.status == http.StatusMethodNotAllowed {
		// The router decides these before any handler; the answer names the methods there are.
		require.NotEmpty(t, header.Get("Allow"), c.name)
	}
	require.Equal(t, "application/problem+json", header.Get("Content-Type"), "%s: %s", c.name, raw)
	var p problem
	require.NoError(t, json.Unmarshal(raw, &p), "%s: %s", c.name, raw)
	require.Equal(t, c.status, p.Status, c.name)
	require.NotEmpty(t, p.Detail, c.name)
	if c.field != "" {
		fields := []string{}
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field)
			require.NotEmpty(t, fe.Message, c.name)
		}
		require.Contains(t, fields, c.field, "%s: %s", c.name, raw)
	}
	require.Equal(t, before, rowCounts(t, e, tables), "%s stored something", c.name)
	// The service still answers a good request.
	st, _, raw := sendHostile(t, e, base, hostileCase{method: "GET", path: goodPath})
	require.Equal(t, 200, st, "after %s: %s", c.name, raw)
}

// walhookTables names every table of the walhook schema.
func walhookTables(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'walhook' AND table_type = 'BASE TABLE' ORDER BY table_name`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	for _, want := range []string{"audit_log", "webhook", "oauth_credential", "role", "role_permission", "member", "api_token", "delivery", "event", "attempt"} {
		require.Contains(t, out, want)
	}
	return out
}

// rowCounts counts the rows of every table in one statement.
func rowCounts(t *testing.T, e *env, tables []string) map[string]int64 {
	t.Helper()
	parts := make([]string, len(tables))
	for i, n := range tables {
		parts[i] = fmt.Sprintf("SELECT %s::text, count(*) FROM walhook.%s", quoteLiteral(n), n)
	}
	return queryMap[string, int64](t, e, strings.Join(parts, " UNION ALL "))
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sendHostile sends one case as is: its own content type, token and raw bytes.
func sendHostile(t *testing.T, e *env, base string, c hostileCase) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, c.method, base+c.path, requestBody(t, c.body))
	require.NoError(t, err, c.name)
	switch {
	case c.ct == "-":
	case c.ct != "":
		req.Header.Set("Content-Type", c.ct)
	case c.body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	switch c.token {
	case "-":
	case "":
		req.Header.Set("Authorization", "Bearer "+e.owner)
	default:
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err, c.name)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err, c.name)
	return res.StatusCode, res.Header, raw
}

// flip returns a base32 character other than ch.
func flip(ch byte) string {
	if ch == 'a' {
		return "b"
	}
	return "a"
}
