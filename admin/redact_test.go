package admin

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

// TestHistoryHoldsNoSecrets runs real deliveries through relay/dispatch whose OAuth token request
// (method GET: the client secret travels in the token URL's query) fails — connection refused, a
// 401 and a 500 whose error answers echo the secret and the whole query string — and one whose
// endpoint answers 500 echoing the secret header it got. A viewer then reads the history and the
// database is read directly: no attempt.error, delivery.last_error, response body or API answer
// (history listing, delivery, and the Test endpoint's answer) holds a secret, bare or URL-escaped,
// while each error still says what went wrong.
func TestHistoryHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realSender())
	const (
		clientSecret = "Cl1ent/Secret+Value&42"
		headerSecret = "hdr-S3cret-9876"
	)
	secrets := []string{clientSecret, url.QueryEscape(clientSecret), headerSecret}

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String() + "/token"
	require.NoError(t, l.Close())
	echoToken := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
				"error_description": "client_secret " + r.URL.Query().Get("client_secret") + " is wrong; you sent " + r.URL.RawQuery})
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/token"
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "bad key %s (Authorization: %s)", r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
	}))
	t.Cleanup(receiver.Close)

	hook := func(name, tokenURL string) (webhook.Webhook, string) {
		var oauthID *int64
		if tokenURL != "" {
			c, err := e.st.OAuthCredentialCreate(e.ctx, webhook.OAuthCredential{CompanyID: "acme", Name: name, TokenURL: tokenURL,
				Method: http.MethodGet, GrantType: webhook.GrantClientCredentials, ClientID: "cid", ClientSecret: clientSecret}, nil)
			require.NoError(t, err)
			oauthID = &c.ID
		}
		w := e.newWebhook(name, func(w *webhook.Webhook) {
			w.URL, w.OAuthID, w.Active = receiver.URL+"/in", oauthID, true
			if oauthID == nil {
				w.Headers = []webhook.Header{{Key: "X-Api-Key", Value: headerSecret, Secret: true}}
			}
		})
		return w, name
	}
	type tc struct {
		w    webhook.Webhook
		want string // what the error must still say
	}
	var cases []tc
	for _, c := range []struct{ name, tokenURL, want string }{
		{"refused", closed, "connection refused"},
		{"401", echoToken(http.StatusUnauthorized), "answered 401: invalid_client"},
		{"500", echoToken(http.StatusInternalServerError), "answered 500: invalid_client"},
		{"header", "", ""},
	} {
		w, _ := hook(c.name, c.tokenURL)
		cases = append(cases, tc{w, c.want})
	}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		_, d, err := storetest.Enqueue(e.ctx, e.st, webhook.Event{SourceKey: fmt.Sprintf("redact:%d", i), CompanyID: "acme",
			EventKey: "contact.created", Payload: json.RawMessage(`{"id":"evt_r","type":"contact.created","data":{}}`), OccurredAt: time.Now()},
			[]int64{c.w.ID})
		require.NoError(t, err)
		ids[i] = d[0]
	}

	e.runDispatcher(dispatch.Config{
		Workers: 8, PerWebhook: 2, ClaimBatch: 16, Lease: 30 * time.Second,
		Schedule: []time.Duration{0, 10 * time.Millisecond}, StatsInterval: time.Second, DrainTimeout: time.Second,
	})

	noSecret := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			require.NotContains(t, text, s, "%s holds a secret", where)
		}
	}
	for i, c := range cases {
		require.Eventually(t, func() bool {
			var state string
			require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT state FROM walhook.delivery WHERE id = $1`, ids[i]).Scan(&state))
			return state == "failed"
		}, 30*time.Second, 20*time.Millisecond, c.w.Name)

		var lastError string
		require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT coalesce(last_error, '') FROM walhook.delivery WHERE id = $1`, ids[i]).Scan(&lastError))
		noSecret("delivery.last_error", lastError)
		rows, err := e.pool.Query(e.ctx, `SELECT coalesce(error, ''), coalesce(response_body, '') FROM walhook.attempt WHERE delivery_id = $1`, ids[i])
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var aerr, body string
			require.NoError(t, rows.Scan(&aerr, &body))
			noSecret("attempt.error", aerr)
			noSecret("attempt.response_body", body)
			if c.want != "" {
				require.Contains(t, aerr, c.want, c.w.Name)
			} else {
				require.Contains(t, body, "bad key ••••••", c.w.Name)
			}
			n++
		}
		require.NoError(t, rows.Err())
		require.Equal(t, 2, n, c.w.Name)

		list := e.do("GET", fmt.Sprintf("/v1/webhooks/%d/deliveries", c.w.ID), e.viewer, nil)
		require.Equal(t, http.StatusOK, list.status, "%s", list.raw)
		noSecret("the history listing", string(list.raw))
		one := e.do("GET", "/v1/deliveries/"+e.pub("acme", ids[i]), e.viewer, nil)
		require.Equal(t, http.StatusOK, one.status, "%s", one.raw)
		noSecret("the delivery", string(one.raw))
		if c.want != "" {
			require.Contains(t, string(one.raw), c.want, c.w.Name)
		}

		test := e.must(http.StatusOK, "POST", fmt.Sprintf("/v1/webhooks/%d/test", c.w.ID), e.owner, nil)
		raw, err := json.Marshal(test)
		require.NoError(t, err)
		noSecret("the test answer", string(raw))
		if c.want != "" {
			require.Contains(t, test["error"], c.want, c.w.Name)
		}
	}
	require.True(t, strings.HasPrefix(closed, "http://127.0.0.1:"))
}
