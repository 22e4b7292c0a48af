package dispatch_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/webhook"
)

// replicaConfig is testConfig with a long lease and a short heartbeat: only the heartbeat can
// bring a dead replica's claims back within a test.
func replicaConfig() dispatch.Config {
	cfg := testConfig()
	cfg.Lease = 10 * time.Minute
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.HeartbeatTimeout = 400 * time.Millisecond
	return cfg
}

// A dead replica's claims (its heartbeat row expired) are released and sent long before their
// lease ends. A live replica's claims, and claims whose token names no replica (made by a version
// without heartbeats), are left to their lease; the dead replica's row is deleted.
func TestDeadReplicaClaimsReleased(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	ids := map[string]int64{}
	for _, owner := range []string{"ghost.0badf00d", "alive.0badf00d", "host-7"} {
		ids[owner] = b.enqueue(t, w.ID)[0]
		claimed, err := b.st.DispatchClaim(b.ctx, storeClaim(owner+":1", 10*time.Minute))
		require.NoError(t, err)
		require.Len(t, claimed, 1)
	}
	require.NoError(t, b.st.ReplicaRegister(b.ctx, "ghost.0badf00d", time.Now(), time.Millisecond))
	require.NoError(t, b.st.ReplicaRegister(b.ctx, "alive.0badf00d", time.Now(), time.Hour))

	d := b.run(t, replicaConfig())
	got := b.waitState(t, ids["ghost.0badf00d"], webhook.DeliverySucceeded)
	require.Equal(t, 1, got.Attempts)

	var leasedBy []string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT array_agg(leased_by ORDER BY id) FROM walhook.delivery
		WHERE state = 'pending' AND lease_until > now() + interval '5 minutes'`).Scan(&leasedBy))
	require.Equal(t, []string{"alive.0badf00d:1", "host-7:1"}, leasedBy, "only the dead replica's claim was released")
	require.EqualValues(t, 1, rc.hits.Load())

	reps, err := b.st.Replicas(b.ctx)
	require.NoError(t, err)
	var names []string
	for _, r := range reps {
		names = append(names, r.ID)
	}
	require.ElementsMatch(t, []string{"alive.0badf00d", d.ReplicaID()}, names, "the dead replica's row is gone")
	require.True(t, strings.HasPrefix(d.ReplicaID(), "dispatch."), d.ReplicaID())
}

// A replica found dead while it was alive (paused, or cut off from the database, past its
// heartbeat timeout) learns it at its next heartbeat: the deliveries it still has queued are
// given back unsent, since another replica may have claimed and sent them since. Only what was
// already on the wire can be sent twice.
func TestPresumedDeadReplicaSendsNoQueuedDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc, first, answer := newHeldReceiver(t)
	wh := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	ids := b.enqueueEvents(t, 4, wh.ID)

	// A sends one request at a time to the webhook: one in flight (held by the receiver), three
	// queued behind it.
	cfg := replicaConfig()
	cfg.PerWebhook = 1
	reg := prometheus.NewRegistry()
	a, err := dispatch.New(cfg, b.st, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), reg)
	require.NoError(t, err)
	actx, stopA := context.WithCancel(b.ctx)
	aDone := make(chan error, 1)
	go func() { aDone <- a.Run(actx) }()
	t.Cleanup(func() { stopA(); require.NoError(t, <-aDone) })
	<-first
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery WHERE starts_with(leased_by, $1)`, a.ReplicaID()+":").Scan(&n))
		return n == len(ids)
	}, waitFor, tick, "A never held all the deliveries")

	// What a reaper does to a dead replica, done while A is alive.
	_, err = b.pool.Exec(b.ctx, `WITH gone AS (DELETE FROM walhook.replica WHERE id = $1)
		UPDATE walhook.delivery SET lease_until = NULL WHERE starts_with(leased_by, $1 || ':')`, a.ReplicaID())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_dispatch_presumed_dead_total") == 1
	}, waitFor, tick, "A never noticed")

	// B takes over and sends all four (the first one a second time).
	b.run(t, cfg)
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if sentTimes(rc, b.msgID(t, id)) == 0 {
				return false
			}
		}
		return true
	}, waitFor, tick, "B did not send the released deliveries")
	answer()
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	stopA()
	require.NoError(t, <-aDone)
	aDone <- nil // for the cleanup

	require.Equal(t, 2, sentTimes(rc, b.msgID(t, ids[0])), "the request on the wire when A was presumed dead, and B's")
	for _, id := range ids[1:] {
		require.Equal(t, 1, sentTimes(rc, b.msgID(t, id)), "delivery %d: A's queued copy was not sent", id)
	}
}

func sentTimes(rc *receiver, msgID string) int {
	n := 0
	for _, r := range rc.requests() {
		if r.Header.Get("webhook-id") == msgID {
			n++
		}
	}
	return n
}

// A replica whose endpoint answers more slowly than the heartbeat timeout keeps its claims: the
// heartbeat does not wait for sends, and a second replica sends nothing twice.
func TestSlowReplicaKeepsItsClaims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		time.Sleep(time.Second) // a slow receiver (2.5 heartbeat timeouts): the sleep is what is tested
		w.WriteHeader(http.StatusOK)
	})
	wh := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	ids := b.enqueueEvents(t, 12, wh.ID)
	cfg := replicaConfig()
	cfg.PerWebhook = 2
	b.run(t, cfg)
	b.run(t, cfg)
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	require.EqualValues(t, len(ids), rc.hits.Load(), "no delivery sent twice")
	for _, id := range ids {
		require.Len(t, b.attempts(t, id), 1)
	}
}
