package dispatch_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// arrivals is a receiver that keeps each request's arrival time and User-Agent (which names the
// replica that sent it).
type arrivals struct {
	*receiver
	mu    sync.Mutex
	at    []time.Time
	agent map[string]int
}

func newArrivals(t *testing.T) *arrivals {
	a := &arrivals{agent: map[string]int{}}
	a.receiver = newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		a.mu.Lock()
		a.at = append(a.at, time.Now())
		a.agent[r.UserAgent()]++
		a.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	return a
}

func (a *arrivals) times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at)
}

// A webhook limited to 50 requests per second gets 50 a second (within 10 %) from two dispatcher
// replicas sharing its bucket, measured over the steady part of the run (the arrivals between
// the first and the last second), while the same company's unlimited webhook is sent at full
// speed beside it. The deliveries waiting for their turn are not failed or retried: each
// succeeds at its first attempt.
func TestRateLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	limitedRc, freeRc := newArrivals(t), newArrivals(t)
	limit := 50
	limited := b.hook(t, webhook.Webhook{URL: limitedRc.URL, RawData: true, RateLimit: &limit})
	free := b.hook(t, webhook.Webhook{URL: freeRc.URL, RawData: true})
	const n = 400 // 8 s at the limit
	for range n {
		b.enqueue(t, limited.ID, free.ID)
	}
	for _, name := range []string{"a", "b"} {
		cfg := testConfig()
		cfg.InstanceID, cfg.Version = name, name // the User-Agent names the replica
		b.run(t, cfg)
	}

	require.Eventually(t, func() bool { return len(freeRc.times()) >= n }, waitFor, tick)
	freeDone := time.Now()
	require.Eventually(t, func() bool { return len(limitedRc.times()) >= n }, time.Minute, tick)

	at := limitedRc.times()
	slices.SortFunc(at, func(x, y time.Time) int { return x.Compare(y) })
	from, to := at[0].Add(time.Second), at[len(at)-1].Add(-time.Second)
	steady := 0
	for _, x := range at {
		if !x.Before(from) && !x.After(to) {
			steady++
		}
	}
	rate := float64(steady) / to.Sub(from).Seconds()
	t.Logf("limited: %d requests in %s, %.1f/s over the steady %s; unlimited done %s after the first",
		len(at), at[len(at)-1].Sub(at[0]).Round(time.Millisecond), rate, to.Sub(from).Round(time.Millisecond),
		freeDone.Sub(at[0]).Round(time.Millisecond))
	require.InDelta(t, 50, rate, 5, "the limit holds within 10 %")
	require.Len(t, at, n, "nothing sent twice")
	limitedRc.mu.Lock()
	require.Len(t, limitedRc.agent, 2, "both replicas sent: %v", limitedRc.agent)
	limitedRc.mu.Unlock()

	// The unlimited webhook was not held to the limit: all of it arrived before half of the
	// limited one (4 s at the limit).
	require.True(t, freeDone.Before(at[n/2]), "the unlimited webhook finished at %s, the limited one's half at %s",
		freeDone.Sub(at[0]), at[n/2].Sub(at[0]))

	var notFirst int
	require.Eventually(t, func() bool {
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery
			WHERE state <> 'succeeded' OR attempts <> 1`).Scan(&notFirst))
		return notFirst == 0
	}, waitFor, tick, "every delivery succeeded at its first attempt")
}
