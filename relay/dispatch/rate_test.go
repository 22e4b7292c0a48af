package dispatch_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestDeliveryRate measures deliveries per second end to end (claim, sign, send to a loopback
// receiver, record) and prints it; it asserts only that everything was delivered.
// WALHOOK_RATE_N sets the number of deliveries (default 2000).
//
//	WALHOOK_RATE_N=20000 go test -count=1 -run TestDeliveryRate -v ./relay/dispatch/
func TestDeliveryRate(t *testing.T) {
	t.Parallel()
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("WALHOOK_RATE_N")); err == nil && v > 0 {
		n = v
	}
	b := setup(t)
	rc := newReceiver(t, nil)
	const hooks = 10
	ids := make([]int64, hooks)
	for i := range ids {
		ids[i] = b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true}).ID
	}
	// Enqueue everything first (one event fans out to every webhook), then time the dispatch.
	for range n / hooks {
		b.enqueue(t, ids...)
	}
	cfg := testConfig()
	cfg.Workers, cfg.PerWebhook, cfg.ClaimBatch, cfg.MaxConnsPerHost = 256, 64, 256, 256
	start := time.Now()
	b.run(t, cfg)
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery WHERE state <> 'succeeded'`).Scan(&left))
		return left == 0
	}, 5*time.Minute, 50*time.Millisecond)
	elapsed := time.Since(start)
	total := n / hooks * hooks
	fmt.Printf("delivered %d deliveries in %s: %.0f deliveries/s\n", total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
}
