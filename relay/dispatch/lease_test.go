package dispatch_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/webhook"
)

// A delivery that waits in memory longer than its lease allows (here for a rate-limit token: a
// limit of 1 a second whose bucket stays empty for longer than the lease, as when many replicas
// share it) is given back unsent, not sent once its lease has passed to another replica that
// sends it too. Two replicas; the bucket is emptied until 9 s from now, the lease is 7 s: without
// the bound both replicas end up holding the delivery and both send it once tokens come.
func TestWaitBeyondLeaseGivesBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	limit := 1
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, RateLimit: &limit})
	// The bucket exists (a first take) and then yields nothing for 9 s.
	_, err := b.st.DispatchRateTake(b.ctx, map[int64]int{w.ID: 1})
	require.NoError(t, err)
	_, err = b.pool.Exec(b.ctx, `UPDATE walhook.rate_bucket SET tokens = 0, refilled_at = now() + interval '9 seconds' WHERE webhook_id = $1`, w.ID)
	require.NoError(t, err)
	id := b.enqueue(t, w.ID)[0]

	var ds []*dispatch.Dispatcher
	for _, name := range []string{"a", "b"} {
		cfg := testConfig()
		cfg.InstanceID = name
		cfg.AttemptTimeout, cfg.Lease = 2*time.Second, 7*time.Second // an attempt may start until 3 s after its claim
		ds = append(ds, b.run(t, cfg))
	}
	b.waitState(t, id, webhook.DeliverySucceeded)
	require.Eventually(t, func() bool { return ds[0].Held() == 0 && ds[1].Held() == 0 }, waitFor, tick)
	require.EqualValues(t, 1, rc.hits.Load(), "sent once")
	as := b.attempts(t, id)
	require.Len(t, as, 1)
}
