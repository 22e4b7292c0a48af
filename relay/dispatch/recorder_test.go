package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestRecorderBoundsSendingAhead holds the attempt table locked, so no result can be written,
// and checks that the dispatcher stops sending about two statements' worth ahead of the
// recorder: what a crash at that moment would send twice. Once results can be written again,
// every delivery succeeds, each sent once.
func TestRecorderBoundsSendingAhead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	h := b.hook(t, webhook.Webhook{URL: rc.URL})
	const n = 600
	for range n {
		b.enqueue(t, h.ID)
	}
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	_, err = tx.Exec(b.ctx, `LOCK TABLE walhook.attempt IN SHARE MODE`) // DispatchRecord's insert waits
	require.NoError(t, err)

	cfg := testConfig()
	cfg.Workers, cfg.PerWebhook, cfg.ClaimBatch, cfg.RecordBatch = 8, 8, 256, 64
	b.run(t, cfg)
	// Runs before the dispatcher is stopped (cleanups run last first), so that a failure does
	// not leave its recorder waiting on the lock. A second rollback is a no-op.
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(b.ctx)) })
	// The statement waiting on the lock (64), the results gathering for the next one (64, and
	// the one that reaches the bound), the workers' buffer to the recorder (64) and a result
	// held by each worker (8). The bound was 4 × RecordBatch plus a buffer of 2 × Workers:
	// 64 + 256 + 16 + 8 = 344.
	const ahead = 64 + 65 + 64 + 8
	require.Eventually(t, func() bool { return rc.hits.Load() >= 2*64 }, waitFor, tick, "sending started")
	require.Never(t, func() bool { return rc.hits.Load() > ahead }, time.Second, tick,
		"sent more than %d ahead of the recorder", ahead)

	require.NoError(t, tx.Rollback(b.ctx))
	require.Eventually(t, func() bool {
		var done int
		err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery WHERE state = 'succeeded'`).Scan(&done)
		return err == nil && done == n
	}, waitFor, tick, "every delivery succeeded")
	require.EqualValues(t, n, rc.hits.Load(), "each sent once")
}
