package leader_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/leader"
	"github.com/walhook/walhook/relay/store"
)

func TestMain(m *testing.M) { xtest.Main(m) }

type replica struct {
	e       *leader.Elector
	leading atomic.Bool
	// refused counts the attempts to acquire the lease that found it held by another replica.
	refused atomic.Int64
	stop    context.CancelFunc
	done    chan error
}

func start(t *testing.T, st *store.Store, holder string) *replica {
	t.Helper()
	m, err := leader.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	e, err := leader.New(leader.Config{Name: "capture:test", Holder: holder, TTL: 3 * time.Second, Renew: 200 * time.Millisecond}, "capture", st, zerolog.Nop(), m)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	r := &replica{e: e, stop: cancel, done: make(chan error, 1)}
	leader.SetAfterAttempt(e, func(ok bool, err error) {
		if !ok && err == nil {
			r.refused.Add(1)
		}
	})
	go func() {
		r.done <- e.Run(ctx, func(ctx context.Context) error {
			r.leading.Store(true)
			<-ctx.Done()
			r.leading.Store(false)
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-r.done)
	})
	return r
}

func TestOneLeaderAndHandover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, _ := xtest.Store(t)
	a := start(t, st, "a")
	require.Eventually(t, a.leading.Load, 10*time.Second, 10*time.Millisecond)
	b := start(t, st, "b")
	// a few of b's attempts, each refused while a leads
	require.Eventually(t, func() bool { return b.refused.Load() >= 3 }, 10*time.Second, 10*time.Millisecond)
	require.False(t, b.leading.Load(), "only one leader")
	require.False(t, b.e.Leading())

	// A graceful stop releases the lease: b takes over at its next attempt.
	a.stop()
	require.NoError(t, <-a.done)
	a.done <- nil
	require.Eventually(t, b.leading.Load, 10*time.Second, 10*time.Millisecond)
	l, err := st.LeaseGet(ctx, "capture:test")
	require.NoError(t, err)
	require.Equal(t, "b", l.Holder)
}

func TestExpiredLeaseIsTaken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, _ := xtest.Store(t)
	// a dead holder's lease, about to expire (as after kill -9)
	ok, err := st.LeaseAcquire(ctx, "capture:test", "dead", 500*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = st.LeaseAcquire(ctx, "capture:test", "other", time.Second)
	require.NoError(t, err)
	require.False(t, ok, "a live lease is not taken")
	b := start(t, st, "b")
	require.Eventually(t, b.leading.Load, 10*time.Second, 10*time.Millisecond)
}
