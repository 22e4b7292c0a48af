package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

const (
	company  = "c1"
	eventKey = "contact.created"
	waitFor  = 30 * time.Second
	tick     = 20 * time.Millisecond
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// testConfig is a dispatcher config with short delays, so retries happen within a test.
func testConfig() dispatch.Config {
	return dispatch.Config{
		SenderConfig: dispatch.SenderConfig{Version: "test", AttemptTimeout: 3 * time.Second, AllowPrivate: loopback},
		Workers:      32, PerWebhook: 8, ClaimBatch: 32,
		PollInterval: 50 * time.Millisecond, Lease: 20 * time.Second,
		Schedule: []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond}, Jitter: -1,
		RetryAfterMax: 2 * time.Hour, StatsInterval: time.Second, DrainTimeout: time.Second,
	}
}

type bundle struct {
	ctx  context.Context
	st   *store.Store
	pool *pgxpool.Pool
	seq  atomic.Int64
}

func setup(t testing.TB) *bundle {
	t.Helper()
	st, pool := xtest.Store(t)
	ctx := t.Context()
	_, err := st.CompanyCreate(ctx, company, "Company One")
	require.NoError(t, err)
	require.NoError(t, st.EventTypeSync(ctx, []webhook.EventType{{
		Key: eventKey, Source: webhook.SourceTable, SourceTable: "contacts", TenantColumn: "company_id",
		Operations: []string{"insert"}, Sample: json.RawMessage(`{"id":7,"email":"sample@example.com"}`),
	}}))
	return &bundle{ctx: ctx, st: st, pool: pool}
}

// run starts a dispatcher until the test ends.
func (b *bundle) run(t testing.TB, cfg dispatch.Config) *dispatch.Dispatcher {
	t.Helper()
	return b.runWith(t, cfg, nil)
}

// runWith is run with prepare (when not nil) called on the dispatcher before it runs, to set
// test signals.
func (b *bundle) runWith(t testing.TB, cfg dispatch.Config, prepare func(*dispatch.Dispatcher)) *dispatch.Dispatcher {
	t.Helper()
	d, err := dispatch.New(cfg, b.st, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), prometheus.NewRegistry())
	require.NoError(t, err)
	if prepare != nil {
		prepare(d)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return d
}

func (b *bundle) hook(t testing.TB, w webhook.Webhook) webhook.Webhook {
	t.Helper()
	w.CompanyID, w.EventKeys = company, []string{eventKey}
	if w.Name == "" {
		w.Name = fmt.Sprintf("hook %d", b.seq.Add(1))
	}
	if w.Method == "" {
		w.Method = webhook.MethodPost
	}
	w.Active = true
	out, err := b.st.WebhookCreate(b.ctx, w, nil)
	require.NoError(t, err)
	return out
}

// msgID is the webhook-id of a delivery of the test company: its public id, as the API shows it.
func (b *bundle) msgID(t *testing.T, id int64) string {
	t.Helper()
	s, err := b.st.DeliveryPublicID(b.ctx, company, id)
	require.NoError(t, err)
	return s
}

func envelope(n int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":"evt_%d","type":%q,"company_id":%q,"occurred_at":"2026-11-27T10:00:00.123Z","data":{"id":%d,"email":"ada%d@example.com","name":"Ada","address":{"city":"London"},"tags":["a","b"]}}`,
		n, eventKey, company, n, n))
}

// shaped is one webhook of sendEveryShape, its delivery, and the request its endpoint received.
type shaped struct {
	hook     webhook.Webhook
	delivery int64
	req      received
}

// sendEveryShape creates a webhook from w (its URL at rc, params, headers) for every method, raw
// and selected, in webhook.Methods order, raw first; sends one event to them all, waits until
// every delivery succeeded, and returns each with the request rc received for it.
func (b *bundle) sendEveryShape(t *testing.T, rc *receiver, w webhook.Webhook) []shaped {
	t.Helper()
	var out []shaped
	var ids []int64
	byHook := map[int64]int{}
	for _, m := range webhook.Methods {
		for _, raw := range []bool{true, false} {
			h := w
			h.Method, h.RawData = m, raw
			h = b.hook(t, h)
			byHook[h.ID] = len(out)
			out = append(out, shaped{hook: h})
			ids = append(ids, h.ID)
		}
	}
	byMsg := map[string]int{} // by webhook-id
	for _, id := range b.enqueue(t, ids...) {
		i := byHook[b.waitState(t, id, webhook.DeliverySucceeded).WebhookID]
		out[i].delivery = id
		byMsg[b.msgID(t, id)] = i
	}
	got := rc.requests()
	require.Len(t, got, len(out))
	for _, r := range got {
		i, ok := byMsg[r.Header.Get("webhook-id")]
		require.True(t, ok, "a request of no delivery: webhook-id %q", r.Header.Get("webhook-id"))
		out[i].req = r
	}
	return out
}

// enqueue stores a new event of the test company and a delivery of it to each webhook.
func (b *bundle) enqueue(t testing.TB, hooks ...int64) []int64 {
	t.Helper()
	return b.enqueueFor(t, company, hooks...)
}

// enqueueEvents stores n events of the test company, one after the other, with a delivery of each
// to hook, and returns the deliveries in that order.
func (b *bundle) enqueueEvents(t testing.TB, n int, hook int64) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = b.enqueue(t, hook)[0]
	}
	return ids
}

// enqueueFor stores a new event of company co and a delivery of it to each webhook.
func (b *bundle) enqueueFor(t testing.TB, co string, hooks ...int64) []int64 {
	t.Helper()
	n := b.seq.Add(1)
	_, ids, err := storetest.Enqueue(b.ctx, b.st, webhook.Event{
		SourceKey: fmt.Sprintf("test:%d", n), CompanyID: co, EventKey: eventKey,
		Payload: envelope(n), OccurredAt: time.Now(),
	}, hooks)
	require.NoError(t, err)
	require.Len(t, ids, len(hooks))
	return ids
}

func (b *bundle) waitState(t *testing.T, id int64, want webhook.DeliveryState) store.HistoryDetail {
	t.Helper()
	var d store.HistoryDetail
	require.Eventually(t, func() bool {
		var err error
		d, err = storetest.DeliveryGetByID(b.ctx, b.st, id)
		return err == nil && d.State == want
	}, waitFor, tick, "delivery %d never became %s", id, want)
	return d
}

// waitAll waits until every delivery of ids is in state want.
func (b *bundle) waitAll(t *testing.T, ids []int64, want webhook.DeliveryState) {
	t.Helper()
	for _, id := range ids {
		b.waitState(t, id, want)
	}
}

func (b *bundle) attempts(t *testing.T, id int64) []store.HistoryAttempt {
	t.Helper()
	as, err := storetest.AttemptListByDelivery(b.ctx, b.st, id)
	require.NoError(t, err)
	return as
}

// headerMap decodes an attempt's request or response headers as the history stores them (nil: none).
func headerMap(t *testing.T, raw json.RawMessage) map[string]string {
	t.Helper()
	if raw == nil {
		return nil
	}
	var h map[string]string
	require.NoError(t, json.Unmarshal(raw, &h))
	return h
}

// received is one request a receiver got.
type received struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// receiver is an httptest server that records requests and answers with respond.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	hits atomic.Int64
}

func newReceiver(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int64)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := rc.hits.Add(1)
		rc.mu.Lock()
		rc.got = append(rc.got, received{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body})
		rc.mu.Unlock()
		if respond != nil {
			respond(w, r, n)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// newHangingReceiver is a receiver that never answers: each request hangs until its client gives
// up (the attempt timeout, or the dispatcher stopping) or the test ends.
func newHangingReceiver(t testing.TB) *receiver {
	t.Helper()
	ended := make(chan struct{})
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int64) {
		select {
		case <-r.Context().Done():
		case <-ended:
		}
	})
	t.Cleanup(func() { close(ended) }) // runs before the server's Close, which waits for its requests
	return rc
}

// newHeldReceiver is a receiver that answers 200 to every request, but holds the first until
// release is called (or the test ends); first is closed when that request arrives. release may be
// called more than once.
func newHeldReceiver(t testing.TB) (rc *receiver, first <-chan struct{}, release func()) {
	t.Helper()
	arrived, answer := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(answer) }) }
	rc = newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			close(arrived)
			<-answer
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(release) // runs before the server's Close, which waits for its requests
	return rc, arrived, release
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}
