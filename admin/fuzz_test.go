package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// FuzzWebhookInput decodes create and patch bodies as the API does, applies them and validates
// the result: nothing panics, and whatever validates has the invariants the store relies on.
func FuzzWebhookInput(f *testing.F) {
	for _, s := range []string{
		`{"name":"n","url":"https://example.com/h","method":"POST","event":"contact.created"}`,
		`{"name":"n","url":"https://example.com/h","method":"POST","events":["contact.created","contact.updated"]}`,
		`{"events":["contact.created","contact.created"],"event":"contact.updated"}`,
		`{"events":[],"event":"contact.created"}`, `{"events":null}`, `{"events":[""]}`,
		`{"name":"n","url":"http://[::1]:80/","method":"GET","event":"a.b","headers":[{"key":"X-A","value":"v","secret":true}],"raw_data":false,"params":[{"key":"e","path":"data.email"}],"active":true,"oauth_id":7}`,
		`{"headers":[{"key":"Host","value":"x\r\n"}]}`,
		`{"params":[{"key":"","path":"data..x"}],"oauth_id":null}`,
		`{"name":1}`, `[]`, `null`, `{"unknown":true}`, `{"name":"\u0000"}`,
		`{"name":"n","url":"https://example.com/","method":"POST","events":["contact.created"],"headers":[{"key":"x-a","value":"••••••","secret":false}]}`,
	} {
		f.Add([]byte(s))
	}
	old := []webhook.Header{{Key: "X-A", Value: "stored-header-value", Secret: true}}
	rules := webhook.Rules{EventExists: func(k string) bool { return k == "contact.created" || k == "contact.updated" },
		EventSample: func(k string) json.RawMessage { return json.RawMessage(`{"email":"a@example.com","name":"Ada"}`) }}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, patch := range []bool{false, true} {
			var in webhookInput
			if patch {
				in = inputOf(webhook.Webhook{Name: "n", URL: "https://example.com/", Method: webhook.MethodPost,
					Headers: old, RawData: true, Params: []webhook.Param{}})
			}
			if err := decodeBytes(raw, &in); err != nil {
				var p *problem
				require.ErrorAs(t, err, &p)
				require.Equal(t, 400, p.Status)
				continue
			}
			var w webhook.Webhook
			if patch {
				w.EventKeys = []string{"contact.created"}
			}
			if _, err := in.apply(&w, old); err != nil {
				var ve *webhook.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "event", ve.Fields[0].Field)
				continue
			}
			if w.Validate(rules) != nil {
				continue
			}
			require.True(t, w.Method.Valid())
			require.NotEmpty(t, w.EventKeys)
			require.LessOrEqual(t, len(w.EventKeys), webhook.MaxEvents)
			seen := map[string]bool{}
			for _, k := range w.EventKeys {
				require.False(t, seen[k], "duplicate event %s validated", k)
				seen[k] = true
			}
			require.LessOrEqual(t, len(w.Headers), webhook.MaxHeaders)
			require.LessOrEqual(t, len(w.Params), webhook.MaxParams)
			for _, h := range w.Headers {
				require.NotContains(t, h.Value, "\n")
			}
			out, err := json.Marshal(webhookOut(w, ownerPrincipal(), nil))
			require.NoError(t, err)
			if !bytes.Contains(raw, []byte("stored-header-value")) {
				require.NotContains(t, string(out), "stored-header-value", "a stored secret header is never answered")
			}
		}
	})
}

// FuzzOAuthInput does the same for OAuth create and update bodies; a response never carries a
// secret.
func FuzzOAuthInput(f *testing.F) {
	for _, s := range []string{
		`{"name":"c","token_url":"https://a.example.com/t","grant_type":"client_credentials","client_id":"i","client_secret":"s"}`,
		`{"name":"c","token_url":"https://a.example.com/t","grant_type":"authorization_code","code":"••••••","extra_params":[{"key":"k","value":"v"}]}`,
		`{"client_secret":null,"method":"get"}`, `{"refresh_token":5}`, `{}`, `x`,
		`{"extra_params":[{"key":"password","value":"••••••"},{"key":"tenant","value":"","secret":true},{"key":"Password","value":"••••••"}]}`,
		`{"token_url":"https://b.example.com/t","extra_params":[{"key":"tenant","value":"••••••","secret":false}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := oauthInputOf(webhook.OAuthCredential{Name: "c", TokenURL: "https://a.example.com/t", GrantType: webhook.GrantClientCredentials})
		if err := decodeBytes(raw, &in); err != nil {
			return
		}
		c := webhook.OAuthCredential{ClientSecret: "stored-secret-value", ExtraParams: []webhook.KeyValue{
			{Key: "password", Value: "stored-password-value"}, {Key: "tenant", Value: "stored-tenant-value", Secret: true},
		}}
		in.apply(&c)
		_ = c.Validate(webhook.Rules{})
		out, err := json.Marshal(oauthOut(c))
		require.NoError(t, err)
		require.NotContains(t, string(out), "stored-secret-value")
		for _, v := range []string{"stored-password-value", "stored-tenant-value"} {
			if !bytes.Contains(raw, []byte(v)) {
				require.NotContains(t, string(out), v, "a stored hidden parameter is never answered")
			}
		}
		if c.Code != "" && len(c.Code) > 3 {
			require.NotContains(t, string(out), `"code":"`+c.Code+`"`)
		}
	})
}

// FuzzCursor: any string either decodes to a cursor of the asked kind and company with a positive
// row id (a public id for deliveries, never a row id), or is refused; encoding round-trips.
func FuzzCursor(f *testing.F) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, c := range []cursor{{Kind: "webhooks:name", Company: "acme", Name: "alpha", ID: 3}, {Kind: "deliveries", Company: "acme", At: &at, PublicID: "msg_aaaaaaaaaaaaaaaaaaaaaaaaaa"}, {Kind: "deliveries", Company: "acme", At: &at, ID: 9}, {Kind: "audit", Company: "acme", ID: 1}} {
		f.Add(encodeCursor(c), c.Kind)
	}
	f.Add("", "audit")
	f.Add("e30", "audit")
	f.Add("!!!", "deliveries")
	f.Fuzz(func(t *testing.T, s, kind string) {
		c, err := decodeCursor(s, kind, "acme")
		if err != nil {
			return
		}
		require.Equal(t, kind, c.Kind)
		require.Equal(t, "acme", c.Company)
		if kind == "deliveries" {
			require.Zero(t, c.ID)
			require.NotEmpty(t, c.PublicID)
		} else {
			require.Positive(t, c.ID)
		}
		again, err := decodeCursor(encodeCursor(c), kind, "acme")
		require.NoError(t, err)
		require.Equal(t, c.ID, again.ID)
		require.Equal(t, c.PublicID, again.PublicID)
		require.Equal(t, c.Name, again.Name)
	})
}

// FuzzThrottleClient feeds the hold-off's client-address reading (the peer address and
// X-Forwarded-For, both from outside) with arbitrary text: it never panics, and the key is always
// a single address (/32) or an IPv6 /64, or the zero prefix when there is no address at all.
func FuzzThrottleClient(f *testing.F) {
	f.Add("10.0.0.2:5000", "198.51.100.1, 203.0.113.5")
	f.Add("[2001:db8::1]:443", "::ffff:10.0.0.9, junk")
	f.Add("pipe", ",,, ")
	th := newThrottle(AuthFailureConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:0:0/96")}}, time.Now)
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		p := th.client(r)
		if p.IsValid() && p.Bits() != 32 && p.Bits() != 64 {
			t.Fatalf("key %s from %q %q", p, remote, xff)
		}
		th.fail(p)
		_ = th.wait(p)
	})
}

// FuzzPlatformInput: any body either is refused (400 while decoding, 422 naming a field) or is a
// company and a member walhook can store as given: an external_id that is one trimmed line of
// valid UTF-8 within the column's bounds (it must equal the tenant column byte for byte), a name
// likewise, and an email with something on both sides of an @.
func FuzzPlatformInput(f *testing.F) {
	for _, s := range []string{
		`{"name":"Acme","external_id":"42"}`, `{"name":"A","external_id":" 42"}`, `{"name":"A","external_id":"a\u0000b"}`,
		`{"email":"a@b.c","role":"owner"}`, `{"email":"a@b.c","name":"N","role":null}`, `{"email":"@x","role":""}`,
		`{"external_id":7}`, `[]`, `null`, `{"email":"a@b.c","email":"d@e.f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var co companyInput
		if err := decodeBytes(raw, &co); err == nil {
			if err := co.validate(); err != nil {
				var ve *webhook.ValidationError
				require.ErrorAs(t, err, &ve)
				require.NotEmpty(t, ve.Fields)
			} else {
				for _, v := range []string{co.ExternalID, co.Name} {
					require.True(t, utf8.ValidString(v))
					require.NotEmpty(t, strings.TrimSpace(v))
					require.LessOrEqual(t, utf8.RuneCountInString(v), maxCompanyText)
					require.False(t, strings.ContainsFunc(v, unicode.IsControl))
				}
				require.Equal(t, strings.TrimSpace(co.ExternalID), co.ExternalID)
			}
		} else {
			var p *problem
			require.ErrorAs(t, err, &p)
			require.Equal(t, 400, p.Status)
		}
		var m memberInput
		if err := decodeBytes(raw, &m); err == nil && m.validate() == nil {
			at := strings.LastIndexByte(m.Email, '@')
			require.Positive(t, at)
			require.Less(t, at, len(m.Email)-1)
			require.False(t, strings.ContainsFunc(m.Email, unicode.IsSpace))
			require.True(t, m.Role == nil || *m.Role != "")
		}
	})
}

// FuzzEventsQuery parses the events query of GET /v1/events/fields: a refusal is a 400 naming
// events; an answer is 1 to MaxEvents keys, each once, that join back to the query.
func FuzzEventsQuery(f *testing.F) {
	for _, s := range []string{"contact.created", "contact.created,contact.updated", "", ",", "a,a", "a,,b", strings.Repeat("a,", 60)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		keys, err := parseEventsQuery(raw)
		if err != nil {
			var p *problem
			require.ErrorAs(t, err, &p)
			require.Equal(t, 400, p.Status)
			require.Equal(t, "events", p.Errors[0].Field)
			return
		}
		require.NotEmpty(t, keys)
		require.LessOrEqual(t, len(keys), webhook.MaxEvents)
		require.Equal(t, raw, strings.Join(keys, ","))
		seen := map[string]bool{}
		for _, k := range keys {
			require.False(t, seen[k])
			seen[k] = true
		}
	})
}

// FuzzHistoryFilter parses the history listing's filters from any query string: nothing panics,
// a refusal is a 400 naming a parameter, and what is accepted is what the store may run (a status
// range inside 100–599, an event id of the public shape, a needle of at most 200 characters of
// valid UTF-8 without NUL, one of the webhook's events).
func FuzzHistoryFilter(f *testing.F) {
	for _, s := range []string{
		"event=contact.created&http_status=5xx&q=ada", "http_status=404", "http_status=none", "http_status=600",
		"event_id=evt_0123456789abcdef0123456789abcdef", "event_id=evt_X", "q=%ff", "q=a%00", "since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z",
		"http_status=%2B40", "http_status=4x", "status=failed&q=", "q=" + strings.Repeat("é", 201),
	} {
		f.Add(s)
	}
	w := webhook.Webhook{EventKeys: []string{"contact.created", "contact.updated"}}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		hf, err := historyFilter(q, w)
		if err != nil {
			var p *problem
			require.ErrorAs(t, err, &p)
			require.Equal(t, 400, p.Status)
			require.Len(t, p.Errors, 1)
			require.NotEmpty(t, p.Errors[0].Field)
			return
		}
		require.Equal(t, hf.StatusMin == nil, hf.StatusMax == nil)
		if hf.StatusMin != nil {
			require.False(t, hf.NoResponse)
			require.True(t, 100 <= *hf.StatusMin && *hf.StatusMin <= *hf.StatusMax && *hf.StatusMax <= 599, "%d..%d", *hf.StatusMin, *hf.StatusMax)
		}
		if hf.EventPublicID != nil {
			require.Regexp(t, `^evt_[0-9a-f]{32}$`, *hf.EventPublicID)
		}
		if hf.Text != nil {
			require.True(t, utf8.ValidString(*hf.Text))
			require.LessOrEqual(t, utf8.RuneCountInString(*hf.Text), store.MaxHistoryText)
			require.NotContains(t, *hf.Text, "\x00")
		}
		if hf.EventKey != nil {
			require.Contains(t, w.EventKeys, *hf.EventKey)
		}
		if hf.Since != nil && hf.Until != nil {
			require.True(t, hf.Since.Before(*hf.Until))
		}
	})
}
