package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

// replicaArgs are relayArgs with the default dispatch lease (2 minutes): a dead replica's claims
// can only come back in seconds through the replicas' heartbeats (default --dispatch-heartbeat 2s,
// --dispatch-heartbeat-timeout 8s).
func replicaArgs(id string, extra ...string) []string {
	return relayArgs(id, append([]string{"--dispatch-lease", "2m"}, extra...)...)
}

// twoReplicas starts relay a, waits until it reads the slot (it leads capture), then starts b:
// two dispatcher replicas, one of them capturing. extra are added to each one's replicaArgs.
func (f *fixture) twoReplicas(extra ...string) (a, b *xtest.Proc) {
	f.t.Helper()
	a = xtest.Serve(f.t, f.env(), replicaArgs("a", extra...)...)
	require.Equal(f.t, "a", f.waitSlotReader(f.t.Context(), "", time.Minute))
	return a, xtest.Serve(f.t, f.env(), replicaArgs("b", extra...)...)
}

// claimsPiledOnB is where the tests of a replica that stops start: two replicas (a leads capture)
// send n events to an endpoint that answers in a second (16 requests a second per relay, so
// claims pile up), and b holds at least 50 claimed deliveries.
func claimsPiledOnB(t *testing.T) (f *fixture, r *receiver, a, b *xtest.Proc, n int) {
	t.Helper()
	f, r = newReceiverFixture(t)
	r.slow(time.Second)
	a, b = f.twoReplicas()
	n = size(500, 2000)
	require.NoError(t, f.insert(t.Context(), "1", 0, n))
	f.waitHeld(t.Context(), "b.", 50, time.Minute, a, b)
	return f, r, a, b, n
}

// TestDeadReplicaClaimsComeBack kills with SIGKILL a relay holding claimed deliveries (behind a
// slow endpoint) while a second relay runs: every delivery the dead one held is sent within 30 s
// of the kill (about HeartbeatTimeout + Heartbeat = 10 s; the bound leaves room for a loaded
// machine), not after its 2-minute lease.
func TestDeadReplicaClaimsComeBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, r, a, b, n := claimsPiledOnB(t)
	b.Kill(t)
	killed := time.Now()
	held := f.heldBy(ctx, "b.")
	r.slow(0)
	took := f.waitSent(ctx, held, killed, 30*time.Second, a)
	f.waitDelivered(r, n, 2*time.Minute, a)
	_, _, dups := r.counts()
	report(t, "every delivery sent within %v of a kill -9 (%d held by the killed replica, lease 2m, heartbeat timeout 8s); %d events, %d duplicates",
		took.Round(100*time.Millisecond), len(held), n, dups)
}

// TestPausedReplicaComesBack stops a relay holding claims with SIGSTOP until the other relay has
// found it dead and released its claims, then lets it go on (SIGCONT), as a long GC pause or a
// frozen VM would. Nothing is corrupted: every delivery succeeds once recorded, no lease is left
// behind, and the paused relay learns it was presumed dead and sends nothing it had queued — only
// the requests that were on the wire when it stopped can arrive twice.
func TestPausedReplicaComesBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, r, a, b, n := claimsPiledOnB(t)
	b.Signal(t, syscall.SIGSTOP)
	paused := time.Now()
	held := f.heldBy(ctx, "b.")
	r.slow(0)
	// Found dead: its heartbeat row is gone (deleted with the release of its claims).
	xtest.Eventually(t, time.Minute, 100*time.Millisecond, func() error {
		if f.count(`SELECT count(*) FROM walhook.replica WHERE starts_with(id, 'b.')`) > 0 {
			return errors.New("the paused relay's heartbeat row is still there (its claims not released)")
		}
		return nil
	})
	took := f.waitSent(ctx, held, paused, 30*time.Second, a)
	b.Signal(t, syscall.SIGCONT)

	f.waitDelivered(r, n, 2*time.Minute, a, b)
	// b runs on, says it was presumed dead, and heartbeats again under the same replica id.
	b.WaitLog(t, regexp.MustCompile("presumed dead"), time.Minute)
	xtest.Eventually(t, time.Minute, 100*time.Millisecond, func() error {
		if b.Exited() {
			return xtest.Stop(errors.New("the paused relay exited"))
		}
		if f.count(`SELECT count(*) FROM walhook.replica WHERE starts_with(id, 'b.') AND expires_at > now()`) == 0 {
			return errors.New("the paused relay does not heartbeat again")
		}
		return nil
	})
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery WHERE state <> 'succeeded' OR lease_until IS NOT NULL`), "every delivery succeeded, no lease left")
	_, _, dups := r.counts()
	retried := f.count(`SELECT count(*) FROM walhook.attempt WHERE outcome <> 'succeeded'`)
	// Duplicates: the requests on the wire when b stopped (at most its 16 connections to the
	// endpoint host), and any attempt that failed after the endpoint got it.
	require.LessOrEqual(t, dups, 16+retried, "the paused relay sent deliveries it had queued after its claims were released")
	report(t, "paused (SIGSTOP) replica: its %d claims released and sent within %v of the pause; after SIGCONT %d duplicates (%d attempts retried), nothing else",
		len(held), took.Round(100*time.Millisecond), dups, retried)
}

// TestSlowReplicaKeepsItsClaims runs two relays against an endpoint that answers after 10 s,
// longer than the heartbeat timeout (8 s): a replica that is slow but alive keeps its claims, and
// nothing is sent twice.
func TestSlowReplicaKeepsItsClaims(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, r := newReceiverFixture(t)
	r.slow(10 * time.Second)
	a, b := f.twoReplicas("--attempt-timeout", "15s")

	n := 48 // three rounds of 16 requests over the two relays
	require.NoError(t, f.insert(ctx, "1", 0, n))
	f.waitDelivered(r, n, 3*time.Minute, a, b)
	_, _, dups := r.counts()
	require.Zero(t, dups, "a slow replica's claims were released while it was sending them")
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.attempt WHERE outcome <> 'succeeded'`))
}

// heldBy returns the pending deliveries leased by replicas whose id starts with prefix.
func (f *fixture) heldBy(ctx context.Context, prefix string) []int64 {
	f.t.Helper()
	var ids []int64
	require.NoError(f.t, f.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM walhook.delivery
		WHERE state = 'pending' AND lease_until > now() AND starts_with(leased_by, $1)`, prefix).Scan(&ids))
	return ids
}

// waitHeld waits until replicas whose id starts with prefix hold at least n deliveries.
func (f *fixture) waitHeld(ctx context.Context, prefix string, n int, within time.Duration, ps ...*xtest.Proc) {
	f.t.Helper()
	xtest.Eventually(f.t, within, 20*time.Millisecond, func() error {
		for _, p := range ps {
			if p.Exited() {
				return xtest.Stop(fmt.Errorf("relay exited: %w", p.Err()))
			}
		}
		if held := len(f.heldBy(ctx, prefix)); held < n {
			return fmt.Errorf("%s* hold %d of %d deliveries: %s", prefix, held, n, f.pendingBreakdown())
		}
		return nil
	})
}

// waitSent waits until every delivery in ids has succeeded and returns how long after since.
func (f *fixture) waitSent(ctx context.Context, ids []int64, since time.Time, within time.Duration, ps ...*xtest.Proc) time.Duration {
	f.t.Helper()
	for {
		var left int
		require.NoError(f.t, f.pool.QueryRow(ctx, `SELECT count(*) FROM walhook.delivery WHERE id = ANY($1) AND state <> 'succeeded'`, ids).Scan(&left))
		if left == 0 {
			return time.Since(since)
		}
		if time.Since(since) > within {
			logs := ""
			for _, p := range ps {
				logs += p.Logs()
			}
			f.t.Fatalf("%d of the %d deliveries held by the stopped replica not sent %v after it stopped: %s; replicas %s\n%s",
				left, len(ids), within, f.pendingBreakdown(), f.replicas(), xtest.Tail(logs, 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replicas lists the heartbeat rows, for failure messages.
func (f *fixture) replicas() string {
	rs, err := f.st.Replicas(f.t.Context())
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s alive=%t", r.ID, r.Alive))
	}
	return strings.Join(out, ", ")
}

// untilSent returns how long after since every delivery in ids had succeeded, waiting up to
// within (then it returns the time waited). It may run in a goroutine: it does not fail the test.
func (f *fixture) untilSent(ctx context.Context, ids []int64, since time.Time, within time.Duration) time.Duration {
	for time.Since(since) < within && ctx.Err() == nil {
		var left int
		err := f.pool.QueryRow(ctx, `SELECT count(*) FROM walhook.delivery WHERE id = ANY($1) AND state <> 'succeeded'`, ids).Scan(&left)
		if err == nil && left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(since)
}
