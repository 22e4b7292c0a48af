package dispatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/internal/lograte"
	"github.com/walhook/walhook/relay/store"
)

// The Dispatcher and how its parts fit together. Each part has a file of its own:
//
//   - producer.go: the claim loop, which claims due deliveries within the fair shares (the
//     producer, in River's words);
//   - worker.go: the worker pool, which holds what was claimed or handed over, queued behind its
//     webhook's requests in flight, and sends it;
//   - cache.go: the webhook cache, which the workers and the claims read webhooks through;
//   - completer.go: the recorder, which writes the workers' results in batches (the completer);
//   - notifier.go: the LISTEN loop, which wakes the claim loop and drops the cache (the notifier);
//   - stats.go: the queue-depth gauges;
//   - replica.go (heartbeat, reaper), handoff.go (capture's in-memory path), fair.go (send slots
//     and company shares), ratelimit.go (per-webhook rate limits), send.go (one HTTP attempt).

// Dispatcher claims due deliveries and sends them; see the package documentation.
type Dispatcher struct {
	cfg    Config
	st     *store.Store
	log    zerolog.Logger
	sender *Sender
	m      *metrics
	logs   logLimits

	wake      chan struct{} // Wake: new deliveries
	slotFreed chan struct{} // a worker finished while work was held back
	results   chan outcome
	slots     *fairSlots // a slot per request in flight: at most Workers, shared fairly
	claimSeq  atomic.Int64
	replicaID string       // the prefix of this replica's claim tokens; see replica.go
	rep       replicaState // heartbeat state shared with the claim loop and the workers
	limits    *rateLimits  // per-webhook rate limits: tokens taken from the shared buckets
	limited   limitedHooks // which webhooks have a rate limit, for sizing their claims

	mu         sync.Mutex
	busy       map[int64]*hookState // per webhook: running and queued jobs
	rates      map[int64]*hookRate  // per webhook: observed send rate, sizing its share
	total      int                  // running + queued jobs
	held       map[string]int       // per company: running + queued jobs
	heldBack   bool                 // the last claim could not take everything it might have
	cache      map[int64]*cached
	cacheEpoch int64                   // bumped by a webhook-change notification
	reloading  map[int64]chan struct{} // webhooks a held job is reloading (current), closed when done
	running    *run                    // set while Run claims: hand-offs are taken only then (handoff.go)

	// recordTried, for tests, runs after each try to write a batch of results, with its error.
	recordTried func(err error)
}

// run is what starting a delivery needs of a running dispatcher (the claim loop, a worker, a
// hand-off): Run's contexts (ctx stops claims and waits; sendCtx, cancelled only when the drain
// times out, stops requests on the wire) and the workers' group. Dispatcher.running is nil before
// Run starts claiming and once it stops.
type run struct {
	ctx, sendCtx context.Context
	workers      *sync.WaitGroup
}

// logLimits are the dispatcher's log limiters, one per kind of failure, so that one failing in
// a loop cannot hide another. Each writes at most one line per lograte.DefaultEvery.
type logLimits struct {
	claim, webhooks, lease, handoff lograte.Limiter // producer, cache, workers, hand-off
	release, record                 lograte.Limiter // completer (release: hand-off too)
	listen, stats                   lograte.Limiter // notifier, queue depth
	heartbeat, reap                 lograte.Limiter // replica.go
	rateLimits, rateTake            lograte.Limiter // ratelimit.go
}

// New returns a dispatcher. reg receives its metrics.
func New(cfg Config, st *store.Store, log zerolog.Logger, reg prometheus.Registerer) (*Dispatcher, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg: cfg, st: st, log: log.With().Str("part", "dispatch").Logger(), m: m,
		replicaID: newReplicaID(cfg.InstanceID),
		sender:    NewSender(cfg.SenderConfig, st, reg),
		wake:      make(chan struct{}, 1),
		slotFreed: make(chan struct{}, 1),
		results:   make(chan outcome, resultsBuffer),
		slots:     newFairSlots(cfg.Workers, cfg.quickSend()),
		held:      map[string]int{},
		busy:      map[int64]*hookState{},
		rates:     map[int64]*hookRate{},
		cache:     map[int64]*cached{},
		reloading: map[int64]chan struct{}{},
	}
	d.limits = newRateLimits(d.takeTokens)
	d.rep.born = time.Now()
	d.rep.healthySince.Store(-1)
	d.log = d.log.With().Str("replica", d.replicaID).Logger()
	return d, nil
}

// Wake tells the dispatcher that deliveries may be due now. It never blocks; calls made while a
// wake-up is pending coalesce. Capture calls it after committing new deliveries.
func (d *Dispatcher) Wake() {
	notify(d.wake)
}

// notify signals on ch, a channel of capacity 1 that one goroutine waits on, without blocking:
// a signal already pending stands for this one.
func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx is cancelled, then lets in-flight requests finish for up to
// DrainTimeout, gives back what it did not send, writes the last results, leaves the replicas
// (releasing whatever it still holds) and returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	// The heartbeat outlives ctx until the last result is written: the deliveries being drained
	// are still this replica's.
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBeat()
	beating := make(chan struct{})
	go func() { defer close(beating); d.heartbeatLoop(beatCtx) }()
	var workers sync.WaitGroup
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.recordLoop(context.WithoutCancel(ctx))
	}()
	var aux sync.WaitGroup
	aux.Add(3)
	go func() { defer aux.Done(); d.listenLoop(ctx) }()
	go func() { defer aux.Done(); d.statsLoop(ctx) }()
	go func() { defer aux.Done(); d.reapLoop(ctx) }()

	r := &run{ctx: ctx, sendCtx: sendCtx, workers: &workers}
	d.mu.Lock()
	d.running = r
	d.mu.Unlock()
	d.claimLoop(r)
	d.mu.Lock()
	d.running = nil // no hand-off starts a worker from now on
	d.mu.Unlock()

	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()
	t := time.NewTimer(d.cfg.DrainTimeout)
	select {
	case <-drained:
	case <-t.C:
		cancelSend()
		<-drained
	}
	t.Stop()
	close(d.results)
	<-recorded
	stopBeat()
	<-beating
	d.leave(ctx)
	aux.Wait()
	d.sender.Close()
	return nil
}

// waitCtx waits for d, or less when ctx ends first; it reports whether the whole wait passed.
func waitCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
