package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

// TestHistoryShowsWhatWasSent (issue 15): a real dispatcher sends to a real receiver, and the
// delivery's history shows each attempt's request as it went on the wire — method, URL with its
// query (credential values masked), masked headers, body — beside the event, and keeps the URL
// of the time of sending after the webhook's URL changes. A GET whose URL would pass 8 KiB is
// not sent and says why.
func TestHistoryShowsWhatWasSent(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string // request lines
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.String())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	e := newEnv(t, realSender())
	e.runDispatcher(dispatch.Config{})

	mk := func(body map[string]any) int64 {
		body["url"] = rcv.URL + "/in?fixed=1&api_key=k-live-123"
		body["active"] = true
		return int64(e.must(201, "POST", "/v1/webhooks", e.manager, body)["id"].(float64))
	}
	get := hookBody("get params")
	get["method"], get["raw_data"] = "GET", false
	get["params"] = []map[string]any{{"key": "mail", "path": "data.email"}, {"key": "n", "path": "data.id"}}
	get["headers"] = []map[string]any{{"key": "X-Signing", "value": "hdr-secret", "secret": true}, {"key": "X-Plain", "value": "p"}}
	getID := mk(get)
	post := hookBody("post raw")
	post["raw_data"] = true
	postID := mk(post)
	big := hookBody("get raw")
	big["method"], big["raw_data"] = "GET", true
	bigID := mk(big)

	payload := json.RawMessage(`{"id":"evt_truth","type":"contact.created","company_id":"acme","occurred_at":"2026-11-27T10:00:00Z","data":{"email":"ada@example.com","id":7,"note":"` + strings.Repeat("x", 9000) + `"}}`)
	_, ids, err := storetest.Enqueue(e.ctx, e.st, webhook.Event{SourceKey: "test:truth", CompanyID: "acme", EventKey: "contact.created", Payload: payload, OccurredAt: time.Now()},
		[]int64{getID, postID, bigID})
	require.NoError(t, err)
	delivery := func(id int64, state string) map[string]any {
		var out map[string]any
		require.Eventually(t, func() bool {
			out = e.must(200, "GET", "/v1/deliveries/"+e.pub("acme", id), e.viewer, nil)
			return out["state"] == state
		}, 30*time.Second, 20*time.Millisecond)
		return out
	}
	byHook := map[int64]int64{}
	for _, id := range ids {
		dd, err := storetest.DeliveryGetByID(e.ctx, e.st, id)
		require.NoError(t, err)
		byHook[dd.WebhookID] = id
	}
	// The URL changes after sending (so wait for the send first); history keeps the one used.
	delivery(byHook[getID], "succeeded")
	e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", getID), e.manager, map[string]any{"url": "https://hooks.example.com/elsewhere",
		"headers": []map[string]any{{"key": "X-Signing", "value": "new-secret", "secret": true}}})

	mask := url.QueryEscape(webhook.Mask)
	g := delivery(byHook[getID], "succeeded")
	a := g["attempt_list"].([]any)[0].(map[string]any)["request"].(map[string]any)
	require.Equal(t, "GET", a["method"])
	require.Equal(t, rcv.URL+"/in?fixed=1&api_key="+mask+"&mail=ada%40example.com&n=7", a["url"])
	require.Equal(t, "", a["body"])
	hd := a["headers"].(map[string]any)
	require.Equal(t, webhook.Mask, hd["X-Signing"])
	require.Equal(t, "p", hd["X-Plain"])
	require.Equal(t, e.pub("acme", byHook[getID]), hd["webhook-id"])
	require.Equal(t, a, g["request"], "the delivery's request is its latest attempt's")
	require.Equal(t, "ada@example.com", g["payload"].(map[string]any)["data"].(map[string]any)["email"], "the event beside it")
	raw := string(e.do("GET", "/v1/deliveries/"+e.pub("acme", byHook[getID]), e.viewer, nil).raw)
	require.NotContains(t, raw, "k-live-123")
	require.NotContains(t, raw, "hdr-secret")

	p := delivery(byHook[postID], "succeeded")
	pa := p["attempt_list"].([]any)[0].(map[string]any)["request"].(map[string]any)
	require.Equal(t, "POST", pa["method"])
	require.JSONEq(t, string(payload), pa["body"].(string), "raw data on: the body sent is the envelope")

	b := delivery(byHook[bigID], "failed")
	ba := b["attempt_list"].([]any)[0].(map[string]any)
	require.Contains(t, ba["error"], "over the 8192-byte limit")
	require.Nil(t, ba["response_status"])
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2, "the oversized GET was not sent: %v", got)
}

// TestLastStatusFollowsLastSentAt: the listing's last_status is the newest attempt's, though the
// results are written out of order.
func TestLastStatusFollowsLastSentAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("order", func(w *webhook.Webhook) { w.Active = true })
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	rec := func(started time.Time, oc webhook.Outcome) {
		id := e.newDelivery(w, "pending", t0)
		var eventAt time.Time
		require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT event_at FROM walhook.delivery WHERE id = $1`, id).Scan(&eventAt))
		_, err := e.st.DispatchRecord(e.ctx, []store.AttemptResult{{
			DeliveryID: id, EventAt: eventAt, CompanyID: "acme", WebhookID: w.ID, N: 1, StartedAt: started, RequestMethod: "POST",
			RequestURL: w.URL, Outcome: oc, Trigger: "auto", State: webhook.DeliveryFailed, TouchWebhook: true,
		}}, t0.Add(-time.Hour))
		require.NoError(t, err)
	}
	rec(t0.Add(time.Minute), webhook.OutcomeSucceeded)
	rec(t0, webhook.OutcomeFailed) // written late
	got := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.viewer, nil)
	require.Equal(t, "succeeded", got["last_status"])
	require.Equal(t, "2026-11-27T10:01:00Z", got["last_sent_at"])
}

// TestResyncInactiveWebhook: resyncing a delivery of a webhook that is off answers 409 with a
// message, and queues nothing.
func TestResyncInactiveWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("Sleeping", nil)
	id := e.newDelivery(w, "failed", time.Now().Add(-time.Minute))
	for _, r := range []resp{
		e.do("POST", "/v1/deliveries/"+e.pub("acme", id)+"/resync", e.manager, nil),
		e.do("POST", fmt.Sprintf("/v1/webhooks/%d/deliveries/resync", w.ID), e.manager, map[string]any{"status": "failed", "since": time.Now().Add(-time.Hour)}),
	} {
		require.Equal(t, 409, r.status, "%s", r.raw)
		require.Equal(t, `webhook "Sleeping" is off: turn it on before resyncing its deliveries`, r.obj(t)["detail"])
	}
	var state string
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT state FROM walhook.delivery WHERE id = $1`, id).Scan(&state))
	require.Equal(t, "failed", state)
	e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.manager, map[string]any{"active": true})
	e.must(202, "POST", "/v1/deliveries/"+e.pub("acme", id)+"/resync", e.manager, nil)
}

// TestDuplicateValidates: the copy must pass today's rules; a webhook saved before a rule
// existed (here a bare parameter path, which the sender now refuses too) is not copied as is.
func TestDuplicateValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("Old rules", func(w *webhook.Webhook) {
		w.RawData = false
		w.Params = []webhook.Param{{Key: "mail", Path: "email"}}
	})
	r := e.do("POST", fmt.Sprintf("/v1/webhooks/%d/duplicate", w.ID), e.manager, nil)
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Contains(t, r.fieldErrors(t), "params[0].path")
	var n int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.webhook WHERE company_id = 'acme'`).Scan(&n))
	require.Equal(t, 1, n, "nothing copied")
	// The API refuses the bare path as the sender does.
	body := hookBody("bare")
	body["raw_data"], body["params"] = false, []map[string]any{{"key": "mail", "path": "email"}}
	r = e.do("POST", "/v1/webhooks", e.manager, body)
	require.Equal(t, 422, r.status)
	require.Contains(t, r.fieldErrors(t), "params[0].path")
	// Fixed, it copies.
	e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.manager, map[string]any{"params": []map[string]any{{"key": "mail", "path": "data.email"}}})
	e.must(201, "POST", fmt.Sprintf("/v1/webhooks/%d/duplicate", w.ID), e.manager, nil)
}
