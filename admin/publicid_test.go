package admin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

// TestWebhookIDIsTheAPIID: a real dispatcher sends a delivery three times (two 500s, then 200);
// every request carries the same webhook-id, and it is the id the history and the delivery
// endpoint show.
func TestWebhookIDIsTheAPIID(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("webhook-id"))
		n := len(seen)
		mu.Unlock()
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	e := newEnv(t, nil)
	w := e.newWebhook("relayed", func(w *webhook.Webhook) { w.URL = rcv.URL + "/in"; w.Active = true })

	e.runDispatcher(dispatch.Config{
		SenderConfig: dispatch.SenderConfig{AttemptTimeout: 3 * time.Second},
		Workers:      4, PerWebhook: 2, ClaimBatch: 8, Lease: 20 * time.Second,
		Schedule:      []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
		RetryAfterMax: time.Hour, StatsInterval: time.Second, DrainTimeout: time.Second,
	})

	_, ids, err := storetest.Enqueue(e.ctx, e.st, webhook.Event{
		SourceKey: "test:relayed", CompanyID: "acme", EventKey: "contact.created", OccurredAt: time.Now(),
		Payload: []byte(`{"id":"evt_relayed","type":"contact.created","company_id":"acme","occurred_at":"2026-01-01T00:00:00Z","data":{}}`),
	}, []int64{w.ID})
	require.NoError(t, err)
	require.Len(t, ids, 1)
	hp := fmt.Sprintf("/v1/webhooks/%d/deliveries", w.ID)
	var item map[string]any
	require.Eventually(t, func() bool {
		items := e.must(200, "GET", hp, e.viewer, nil)["items"].([]any)
		item = items[0].(map[string]any)
		return item["state"] == "succeeded"
	}, 30*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 3)
	require.Equal(t, []string{seen[0], seen[0], seen[0]}, seen, "the same webhook-id on every retry")
	require.Equal(t, seen[0], item["id"], "the webhook-id is the API's id")
	require.Equal(t, "evt_relayed", item["event_id"])
	detail := e.must(200, "GET", "/v1/deliveries/"+seen[0], e.viewer, nil)
	require.Equal(t, seen[0], detail["id"])
	require.Len(t, detail["attempt_list"], 3)
	require.Equal(t, 404, e.do("GET", fmt.Sprintf("/v1/deliveries/%d", ids[0]), e.viewer, nil).status)
}

// TestMovedSecretListed: company acme's secrets copied into company other's webhook and OAuth
// credential with SQL do not open there; other's listings still answer 200, naming the problem
// in secret_error, and show none of acme's values.
func TestMovedSecretListed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("acme-hook", func(w *webhook.Webhook) {
		w.Headers = []webhook.Header{{Key: "X-Api-Key", Value: "acme-key", Secret: true}}
	})
	cred := e.newOAuth("acme", "acme-cred")
	ow, err := e.st.WebhookCreate(e.ctx, webhook.Webhook{CompanyID: "other", Name: "other-hook",
		URL: "https://hooks.example.com/other", Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true,
		Headers: []webhook.Header{{Key: "X-Api-Key", Value: "other-key", Secret: true}}}, &e.otherM.ID)
	require.NoError(t, err)
	oc := e.newOAuth("other", "other-cred")
	_, err = e.pool.Exec(e.ctx, `UPDATE walhook.webhook SET signing_secret_enc = a.signing_secret_enc, secret_headers_enc = a.secret_headers_enc
		FROM walhook.webhook a WHERE a.id = $1 AND walhook.webhook.id = $2`, w.ID, ow.ID)
	require.NoError(t, err)
	_, err = e.pool.Exec(e.ctx, `UPDATE walhook.oauth_credential SET client_secret_enc = a.client_secret_enc
		FROM walhook.oauth_credential a WHERE a.id = $1 AND walhook.oauth_credential.id = $2`, cred.ID, oc.ID)
	require.NoError(t, err)

	list := e.do("GET", "/v1/webhooks", e.other, nil)
	require.Equal(t, 200, list.status, string(list.raw))
	require.NotContains(t, string(list.raw), w.Secret)
	require.NotContains(t, string(list.raw), "acme-key")
	item := list.obj(t)["items"].([]any)[0].(map[string]any)
	require.Empty(t, item["secret"])
	require.Contains(t, item["secret_error"], "the signing secret does not open: it was changed or moved here from another row, company or column")
	got := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d", ow.ID), e.other, nil)
	require.Contains(t, got["secret_error"], "the signing secret does not open")

	creds := e.must(200, "GET", "/v1/oauth", e.other, nil)["items"].([]any)
	require.Len(t, creds, 1)
	c := creds[0].(map[string]any)
	require.Equal(t, false, c["client_secret_set"])
	require.Contains(t, c["secret_error"], "the client secret does not open")

	// acme's own rows are untouched.
	mine := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.owner, nil)
	require.Equal(t, w.Secret, mine["secret"])
	require.Nil(t, mine["secret_error"])
}
