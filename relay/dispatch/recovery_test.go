package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/webhook"
)

// A backlog of one webhook, many times its per-webhook share, is sent without waiting for the
// poll: a claim that took a webhook's full share wakes the claim loop when a slot frees. (The
// leader-kill chaos run once left hundreds pending for minutes: every claim stopped at the share,
// and the rest waited for the poll floor while due, unleased rows were there.)
func TestBacklogOfOneWebhookNeedsNoPoll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	const n = 200
	for range n {
		b.enqueue(t, w.ID)
	}
	cfg := testConfig()
	cfg.PollInterval = time.Hour // only the first claim, wake-ups and freed slots claim
	b.run(t, cfg)
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery WHERE state <> 'succeeded'`).Scan(&left))
		return left == 0
	}, waitFor, tick, "deliveries left pending with the poll floor out of reach")
	require.EqualValues(t, n, rc.hits.Load())
}

// Results that could not be written while PostgreSQL was unreachable are written once it is back,
// instead of being dropped: the delivery is recorded as sent without waiting for its lease to
// expire, and it is not sent twice.
func TestResultWrittenAfterDatabaseOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc, sent, answer := newHeldReceiver(t)
	wh := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, wh.ID)[0]
	cfg := testConfig()
	cfg.Lease = 10 * time.Minute // far beyond the wait below: only a retried write can succeed in time
	recordFailed := make(chan struct{})
	var once sync.Once
	b.runWith(t, cfg, func(d *dispatch.Dispatcher) {
		d.OnRecordTry(func(err error) {
			if err != nil {
				once.Do(func() { close(recordFailed) })
			}
		})
	})
	<-sent

	// The outage: no new connections to this database, and its sessions terminated.
	admin, err := pgx.Connect(b.ctx, xtest.Cluster(t).URL("postgres"))
	require.NoError(t, err)
	// The cleanups run after the test's context is cancelled.
	t.Cleanup(func() { _ = admin.Close(context.WithoutCancel(b.ctx)) })
	var db string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT current_database()`).Scan(&db))
	allow := func(ok bool) {
		_, err := admin.Exec(context.WithoutCancel(b.ctx), fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, pgx.Identifier{db}.Sanitize(), ok))
		require.NoError(t, err)
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	_, err = admin.Exec(b.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db)
	require.NoError(t, err)
	answer() // the attempt succeeds while its result cannot be written
	select { // the recorder tried to write the result, and could not
	case <-recordFailed:
	case <-time.After(waitFor):
		t.Fatal("the recorder never tried to write the result during the outage")
	}
	allow(true)

	d := b.waitState(t, id, webhook.DeliverySucceeded)
	require.Equal(t, 1, d.Attempts)
	require.EqualValues(t, 1, rc.hits.Load(), "sent once: the result was written, not lost to a lease expiry")
}
