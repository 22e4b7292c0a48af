package dispatch_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// BenchmarkDeliveryRate measures deliveries per second end to end: claim, sign, send to a
// loopback receiver, record. One op is one delivery: b.N deliveries (events that fan out to ten
// webhooks each) are enqueued first, then a dispatcher is started and timed until every one has
// succeeded; it reports deliveries/s. -benchtime sets the count:
//
//	go test -run '^$' -bench DeliveryRate -benchtime 20000x ./relay/dispatch/
func BenchmarkDeliveryRate(b *testing.B) {
	bb := setup(b)
	rc := newReceiver(b, nil)
	const hooks = 10
	ids := make([]int64, hooks)
	for i := range ids {
		ids[i] = bb.hook(b, webhook.Webhook{URL: rc.URL, RawData: true}).ID
	}
	// Enqueue everything first (one event fans out to every webhook), then time the dispatch.
	for range b.N / hooks {
		bb.enqueue(b, ids...)
	}
	if rest := b.N % hooks; rest > 0 {
		bb.enqueue(b, ids[:rest]...)
	}
	cfg := testConfig()
	cfg.Workers, cfg.PerWebhook, cfg.ClaimBatch, cfg.MaxConnsPerHost = 256, 64, 256, 256
	b.ResetTimer()
	bb.run(b, cfg)
	require.Eventually(b, func() bool {
		var left int
		require.NoError(b, bb.pool.QueryRow(bb.ctx, `SELECT count(*) FROM walhook.delivery WHERE state <> 'succeeded'`).Scan(&left))
		return left == 0
	}, 5*time.Minute, 50*time.Millisecond)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
