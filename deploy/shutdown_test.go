package deploy_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// seedDeliveries creates, through the store (so secrets are sealed with keySpec), a company, an
// outbox event type and an active webhook pointing at url, then n captured events each with a
// pending delivery due now.
func seedDeliveries(t *testing.T, pool *pgxpool.Pool, keySpec, url string, n int) {
	t.Helper()
	ctx := t.Context()
	keys, err := crypt.ParseKeyring(keySpec)
	require.NoError(t, err)
	st := store.New(pool, keys)
	_, err = st.CompanyCreate(ctx, "1", "Acme")
	require.NoError(t, err)
	require.NoError(t, st.EventTypeSync(ctx, []webhook.EventType{{Key: "invoice.paid", Source: webhook.SourceOutbox}}))
	w, err := st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: "w", URL: url, Method: webhook.MethodPost,
		EventKeys: []string{"invoice.paid"}, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
WITH e AS (
  INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
  SELECT 'outbox:' || g, '1', 'invoice.paid', '{"type":"invoice.paid"}', now() FROM generate_series(1, $2::int) g RETURNING id, occurred_at
)
INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key) SELECT '1', $1, e.id, e.occurred_at, 'invoice.paid' FROM e`, w.ID, n)
	require.NoError(t, err)
}

// TestSIGTERMDrainsAndExitsZero runs `walhook serve` as a real process with pending deliveries
// to a receiver that holds every request until told to answer. With requests in flight it sends
// SIGTERM and checks the stop sequence: /readyz turns 503 while the process still serves
// (--shutdown-delay); the held requests are then answered during the drain; the process exits 0.
// Afterwards no delivery is lost, none is left leased, and every request the receiver answered
// is recorded as succeeded.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	t.Parallel()
	buildBinary(t)
	var answered atomic.Int64
	arrived := make(chan struct{}, 1024)
	release := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
		answered.Add(1)
	}))
	t.Cleanup(receiver.Close)
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // runs before receiver.Close
	dbURL := xtest.DatabaseURL(t)
	pool := xtest.PoolOn(t, dbURL)
	const n = 50
	spec := crypt.GenerateKeySpec("k1")
	seedDeliveries(t, pool, spec, receiver.URL, n)

	p := xtest.Serve(t, serveEnv(dbURL, spec), "serve", "--allow-private-cidrs", "127.0.0.0/8",
		"--shutdown-delay", "1s", "--shutdown-timeout", "60s", "--dispatch-drain-timeout", "30s")
	p.WaitStatus(t, "/readyz", http.StatusOK, time.Minute)
	require.Equal(t, http.StatusOK, p.Status(t, "/healthz"))

	// The image's HEALTHCHECK: the binary probes itself.
	code, out := xtest.Run(t, nil, "healthcheck", "--url", "http://"+p.Addr()+"/healthz")
	require.Zero(t, code, out)

	select { // at least one attempt in flight
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatalf("no delivery attempt reached the receiver\n%s", p.Logs())
	}
	p.Signal(t, syscall.SIGTERM)
	p.WaitStatus(t, "/readyz", http.StatusServiceUnavailable, time.Minute)
	require.Equal(t, http.StatusOK, p.Status(t, "/healthz"), "alive while draining")
	code, out = xtest.Run(t, nil, "healthcheck", "--url", "http://"+p.Addr()+"/readyz")
	require.NotZero(t, code, "healthcheck fails on a 503: %s", out)
	releaseAll() // the attempts in flight finish within the drain budget
	require.Equal(t, 0, p.Wait(t, 90*time.Second), "exit code after SIGTERM\n%s", p.Logs())

	ctx := t.Context()
	var total, leased, succeeded int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'),
		count(*) FILTER (WHERE state = 'pending' AND lease_until IS NOT NULL AND lease_until > now())
		FROM walhook.delivery`).Scan(&total, &succeeded, &leased))
	require.Equal(t, n, total, "no delivery lost")
	require.Zero(t, leased, "no delivery left leased by the stopped process")
	require.Positive(t, answered.Load())
	require.EqualValues(t, answered.Load(), succeeded, "every answered request is recorded as succeeded")
}

// TestSecondSignalExitsAtOnce: during a long drain (--shutdown-delay 10m), a second SIGTERM ends
// the process at once with exit code 130.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	buildBinary(t)
	p := xtest.Serve(t, serveEnv(xtest.DatabaseURL(t), crypt.GenerateKeySpec("k1")), "serve", "--shutdown-delay", "10m")
	p.WaitStatus(t, "/readyz", http.StatusOK, time.Minute)
	p.Signal(t, syscall.SIGTERM)
	p.WaitStatus(t, "/readyz", http.StatusServiceUnavailable, time.Minute)
	p.Signal(t, syscall.SIGTERM)
	require.Equal(t, 130, p.Wait(t, 90*time.Second), "a second signal exits at once\n%s", p.Logs())
}
