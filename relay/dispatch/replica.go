package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A replica's heartbeat and the release of dead replicas' claims (see "Replicas" in the package
// documentation).
//
// Two goroutines, neither of which waits for a send or a result: heartbeatLoop renews this
// replica's row every Heartbeat (a statement of at most Heartbeat), and reapLoop releases the
// claims of replicas whose row has expired. Their state is shared with the claim loop and the
// workers through atomics:
//   - lastBeat: when the last successful heartbeat was sent (monotonic, since born). Claims are
//     made, and queued deliveries sent, only while it is recent (claimable, waitClaimable), so a
//     replica cut off from the database stops before anyone can find it dead, and one that was
//     paused waits for its next heartbeat to learn whether it was.
//   - healthySince: since when heartbeats have succeeded without a failure. A replica reaps
//     others only after half a HeartbeatTimeout of health: when the database comes back after an
//     outage, every replica's heartbeat had stopped, and the first one back must not release the
//     claims of the others before they had a chance to beat.
//   - fence: the highest claim sequence number whose claims were released by another replica.
//     When a heartbeat finds this replica's row gone (another replica found it dead: it was
//     paused, or cut off, past HeartbeatTimeout), every claim made so far may be someone
//     else's now; the jobs still queued from them are given back instead of sent.

// newReplicaID returns the replica id claims are made under: the instance id and 8 random hex
// digits, so every process has its own (a restart of the same host is a new replica, and
// releases its predecessor's claims). ':' separates the replica from the claim number in a
// token, so it is replaced.
func newReplicaID(instance string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return strings.ReplaceAll(instance, ":", "_") + "." + hex.EncodeToString(b[:])
}

// replicaState is the heartbeat's shared state; see above.
type replicaState struct {
	born         time.Time
	lastBeat     atomic.Int64 // since born, ns; 0: never
	healthySince atomic.Int64 // since born, ns; -1: not healthy
	fence        atomic.Int64

	mu     sync.Mutex
	beaten chan struct{} // closed by the next successful heartbeat
}

// next returns a channel closed by the next successful heartbeat.
func (r *replicaState) next() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.beaten == nil {
		r.beaten = make(chan struct{})
	}
	return r.beaten
}

func (r *replicaState) signal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.beaten != nil {
		close(r.beaten)
		r.beaten = nil
	}
}

func (r *replicaState) since(ns int64) time.Duration {
	return time.Since(r.born) - time.Duration(ns)
}

// ReplicaID is the id this dispatcher's claims are made under (delivery.leased_by's prefix, the
// id of its walhook.replica row).
func (d *Dispatcher) ReplicaID() string { return d.replicaID }

// claimable reports whether a heartbeat succeeded recently enough to claim: within half of
// HeartbeatTimeout, so claims made now are safe for at least that long.
func (d *Dispatcher) claimable() bool {
	lb := d.rep.lastBeat.Load()
	return lb > 0 && d.rep.since(lb) < d.cfg.HeartbeatTimeout/2
}

// waitClaimable waits until claimable or ctx ends. A worker calls it before each send: after a
// pause (SIGSTOP, a stalled VM) the workers run again as soon as the heartbeat does, and must
// not send what they had queued before the heartbeat has said whether another replica released
// it meanwhile (then fenced). It costs nothing while the heartbeat is current; while it fails
// (the database unreachable), queued deliveries wait.
func (d *Dispatcher) waitClaimable(ctx context.Context) {
	for !d.claimable() {
		ch := d.rep.next()
		if d.claimable() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// fenced reports whether j's claim may have been released by another replica (this replica was
// found dead after it was made): j must not be sent.
func (d *Dispatcher) fenced(j job) bool { return j.seq <= d.rep.fence.Load() }

// heartbeatLoop renews this replica's row every Heartbeat until ctx ends. It runs until the
// last result is written, so the claims being drained on shutdown stay this replica's.
func (d *Dispatcher) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.Heartbeat)
	defer t.Stop()
	registered := false
	for {
		d.beat(ctx, &registered)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) beat(ctx context.Context, registered *bool) {
	sent := time.Since(d.rep.born)
	bctx, cancel := context.WithTimeout(ctx, d.cfg.Heartbeat)
	defer cancel()
	alive, found, err := d.st.ReplicaBeat(bctx, d.replicaID, d.cfg.HeartbeatTimeout)
	if err == nil && !found {
		if err = d.st.ReplicaRegister(bctx, d.replicaID, d.rep.born, d.cfg.HeartbeatTimeout); err == nil {
			alive = 1 // at least; the next beat counts the others
		}
	}
	if err != nil {
		d.rep.healthySince.Store(-1)
		if ctx.Err() == nil {
			d.m.heartbeatFailures.Inc()
			d.logs.heartbeat.Msg(d.log.Warn().Err(err),
				"replica heartbeat failed; no new claims until it succeeds, and after the heartbeat timeout other replicas release this one's claims")
		}
		return
	}
	if !found && *registered {
		// Another replica found this one dead and released its claims: whatever is still queued
		// may be claimed (and sent) by others now. The fence comes before lastBeat, so a claim
		// made once lastBeat is fresh again is above it.
		d.rep.fence.Store(d.claimSeq.Load())
		d.m.presumedDead.Inc()
		d.log.Warn().Str("replica", d.replicaID).Msg("this replica was presumed dead (paused or cut off from the database past the heartbeat timeout) and its claims released; the deliveries it still held are given back unsent")
	}
	*registered = true
	wasClaimable := d.claimable()
	d.rep.lastBeat.Store(max(1, int64(sent)))
	if d.rep.healthySince.Load() < 0 {
		d.rep.healthySince.Store(int64(sent))
	}
	d.rep.signal()
	d.m.replicasAlive.Set(float64(alive))
	if !wasClaimable {
		d.Wake()
	}
}

// reapLoop releases the claims of replicas whose heartbeat has expired, every Heartbeat, once
// this replica has been healthy for half of HeartbeatTimeout.
func (d *Dispatcher) reapLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hs := d.rep.healthySince.Load()
		if hs < 0 || d.rep.lastBeat.Load() == 0 || d.rep.since(hs) < d.cfg.HeartbeatTimeout/2 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, d.cfg.HeartbeatTimeout)
		dead, released, err := d.st.ReplicaReap(rctx, d.replicaID)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d.logs.reap.Msg(d.log.Warn().Err(err), "release the claims of dead replicas")
			}
			continue
		}
		if len(dead) == 0 {
			continue
		}
		d.m.replicasReaped.Add(float64(len(dead)))
		d.m.reapedDeliveries.Add(float64(released))
		d.log.Info().Strs("replicas", dead).Int64("deliveries", released).Msg("released the claims of dead replicas")
		d.Wake()
	}
}

// leave gives back what this replica still has claimed and deletes its row: a clean stop lets
// the others claim at once rather than after HeartbeatTimeout.
func (d *Dispatcher) leave(ctx context.Context) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	released, err := d.st.ReplicaLeave(lctx, d.replicaID)
	if err != nil {
		d.log.Warn().Err(err).Msg("leave the replicas; other replicas release this one's claims after the heartbeat timeout")
		return
	}
	if released > 0 {
		d.log.Info().Int64("deliveries", released).Msg("gave back claimed deliveries on stop")
	}
}
