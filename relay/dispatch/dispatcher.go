package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/signature"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// Dispatcher claims due deliveries and sends them; see the package documentation.
type Dispatcher struct {
	cfg    Config
	st     *store.Store
	log    zerolog.Logger
	sender *Sender
	m      *metrics
	logs   rateLimiter

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
}

type hookState struct {
	company string
	running int
	queue   []job
	refill  int // when the queue drops to this length, wake the claim loop (if held back)
}

// hookRate is a webhook's observed send rate: sent since `since`, folded into perSec (a moving
// average) every rateEvery.
type hookRate struct {
	n      int
	since  time.Time
	perSec float64
}

const rateEvery = 250 * time.Millisecond

type job struct {
	c   store.Claimed
	seq int64 // the claim's sequence number (its token's suffix), for the fence
	// sendBy is the last moment an attempt may start (see Dispatcher.sendBy): later, its lease
	// could end while it runs or before its result is written, and another replica send it too.
	sendBy time.Time
	w      *webhook.Webhook
	cred   *webhook.OAuthCredential
	ids    *store.PublicIDs // the webhook-id is the delivery's public id
}

type cached struct {
	w      *webhook.Webhook // nil: deleted
	cred   *webhook.OAuthCredential
	loaded time.Time
	epoch  int64
}

// outcome is a result for the recorder: an attempt to write, or a lease to give back.
type outcome struct {
	rec     store.AttemptResult
	release bool
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

// Sender is the dispatcher's sender (for test sends in the same process).
func (d *Dispatcher) Sender() *Sender { return d.sender }

// Wake tells the dispatcher that deliveries may be due now. It never blocks; calls made while a
// wake-up is pending coalesce. Capture calls it after committing new deliveries.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
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

	d.mu.Lock()
	d.running = &run{ctx: ctx, sendCtx: sendCtx, workers: &workers}
	d.mu.Unlock()
	d.claimLoop(ctx, sendCtx, &workers)
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

func (d *Dispatcher) claimLoop(ctx, sendCtx context.Context, workers *sync.WaitGroup) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	// announced: new deliveries were announced (Wake, NOTIFY) or the poll is due, and no claim
	// statement has run since. A wake-up by a worker finishing alone does not set it.
	announced := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			announced = true
		case <-d.slotFreed:
		case <-timer.C:
			announced = true
		}
		for ctx.Err() == nil {
			more, err := d.claimOnce(ctx, sendCtx, workers, &announced)
			if err != nil {
				if ctx.Err() == nil {
					d.logs.do("claim", func() { d.log.Error().Err(err).Msg("claim deliveries") })
				}
				break
			}
			if !more {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d.cfg.PollInterval)
	}
}

// share is how many deliveries of webhook id may be held in memory (running and queued): what it
// sends in shareWindow at its observed rate, between claimPerWebhook and maxShare. Called with
// d.mu held.
func (d *Dispatcher) share(id int64, now time.Time) int {
	r := d.rates[id]
	if r == nil {
		return d.cfg.claimPerWebhook
	}
	if el := now.Sub(r.since); el >= rateEvery {
		inst := float64(r.n) / el.Seconds()
		if r.perSec == 0 {
			r.perSec = inst
		} else {
			r.perSec = (r.perSec + inst) / 2
		}
		r.n, r.since = 0, now
	}
	return min(d.cfg.maxShare, max(d.cfg.claimPerWebhook, int(r.perSec*d.cfg.shareWindow().Seconds())))
}

// claimOnce claims what the in-memory bound can take and starts it. Each webhook may hold its
// share; one holding at least half of it is skipped, so the next batch is claimed while the
// current one is still being sent. Each company may hold its share (see companyPlan).
// announced is the claim loop's (see there); claimOnce clears it when it runs the claim. more
// says a full batch came back and room is left: claim again at once.
func (d *Dispatcher) claimOnce(ctx, sendCtx context.Context, workers *sync.WaitGroup, announced *bool) (bool, error) {
	now := time.Now()
	if !d.claimable() {
		return false, nil // the heartbeat wakes the claim loop when it succeeds again
	}
	limited := d.rateLimited(ctx, now)
	threshold := max(1, min(d.cfg.ClaimBatch, d.cfg.MaxClaimed)/8)
	if *announced {
		d.giveBackOverCap(threshold) // room for the announced deliveries' webhooks (see there)
	}
	d.mu.Lock()
	free := d.cfg.MaxClaimed - d.total
	if free < threshold && d.total > 0 {
		d.heldBack = true
		d.mu.Unlock()
		return false, nil
	}
	cp := d.companyPlan(threshold)
	if !*announced && len(cp.rooms) == 0 && len(cp.skip) > 0 {
		// Every company holding work is at its share, and no new deliveries were announced
		// since the last claim: a claim could find only other companies' retries, which the
		// poll finds.
		d.heldBack = true
		d.mu.Unlock()
		return false, nil
	}
	var skip []int64
	shares := map[int64]int{}
	for id, hs := range d.busy {
		held := hs.running + len(hs.queue)
		sh := d.share(id, now)
		skipAt := max(d.cfg.skipAt, sh/2)
		if hc := cp.hookCap[id]; hc > 0 {
			sh, skipAt = min(sh, hc), min(skipAt, hc)
		}
		if rate, ok := limited[id]; ok {
			sh, skipAt = min(sh, d.cfg.rateShare(rate)), min(skipAt, d.cfg.rateShare(rate))
		}
		if held >= skipAt {
			skip = append(skip, id)
			continue
		}
		shares[id] = sh - held
	}
	for id, r := range d.rates {
		if _, busy := d.busy[id]; busy {
			continue
		}
		if now.Sub(r.since) > time.Minute {
			delete(d.rates, id) // idle: forget its rate
			continue
		}
		if sh := d.share(id, now); sh > d.cfg.claimPerWebhook {
			shares[id] = sh
		}
	}
	// A rate-limited webhook holds no more than its limit sends in an eighth of the lease.
	for id, rate := range limited {
		if _, busy := d.busy[id]; !busy {
			if sh, ok := shares[id]; ok || d.cfg.rateShare(rate) < d.cfg.claimPerWebhook {
				if !ok {
					sh = d.cfg.claimPerWebhook
				}
				shares[id] = min(sh, d.cfg.rateShare(rate))
			}
		}
	}
	skipCos, rooms, newcomerCap := cp.skip, cp.rooms, cp.newcomerCap
	d.mu.Unlock()
	limit := min(free, d.cfg.ClaimBatch)
	if limit <= 0 {
		return false, nil
	}
	// A company's room below the limit needs the claim's per-company window (a slower
	// statement, see Store.DispatchClaim); when the room is at least half a claim, or the
	// company is the only one holding work, a smaller claim does the same with the plain
	// statement.
	for _, room := range rooms {
		if room < limit && (2*room >= limit || len(rooms) == 1 && len(skipCos) == 0) {
			limit = room
		}
	}
	if newcomerCap < limit && 2*newcomerCap >= limit {
		limit = newcomerCap
	}
	*announced = false
	seq := d.claimSeq.Add(1)
	token := d.replicaID + ":" + strconv.FormatInt(seq, 10)
	claimed, err := d.st.DispatchClaim(ctx, store.ClaimParams{
		Limit: limit, PerWebhook: d.cfg.claimPerWebhook, Lease: d.cfg.Lease, Token: token, SkipWebhooks: skip,
		Shares: shares, SkipCompanies: skipCos, Rooms: rooms, PerCompany: newcomerCap,
	})
	if err != nil {
		return false, fmt.Errorf("claim deliveries: %w", err)
	}
	if len(claimed) == 0 {
		d.mu.Lock()
		d.heldBack = len(skip) > 0 || len(skipCos) > 0
		d.mu.Unlock()
		return false, nil
	}
	d.m.taken.WithLabelValues("claim").Add(float64(len(claimed)))
	hooks, err := d.webhooks(ctx, claimed)
	var ids *store.PublicIDs
	if err == nil {
		ids, err = d.st.PublicIDs(ctx) // loaded once, then cached by the store
	}
	if err != nil {
		// Give the claim back rather than wait for the lease.
		for _, c := range claimed {
			d.results <- outcome{rec: store.AttemptResult{DeliveryID: c.ID, LeaseToken: c.LeaseToken}, release: true}
		}
		return false, err
	}
	var direct []outcome // sent to the recorder after unlocking: it takes d.mu too
	perHook := make(map[int64]int, 4)
	capped := false // a webhook got its full share: claim again as soon as a slot frees
	d.mu.Lock()
	for _, c := range claimed {
		perHook[c.WebhookID]++
		allowed, ok := shares[c.WebhookID]
		if !ok {
			allowed = d.cfg.claimPerWebhook
		}
		if perHook[c.WebhookID] >= allowed {
			capped = true
		}
		if o, ok := d.start(ctx, sendCtx, workers, c, seq, hooks[c.WebhookID], ids, now); ok {
			direct = append(direct, o)
		}
	}
	for id := range perHook {
		if hs := d.busy[id]; hs != nil {
			hs.refill = max(d.cfg.skipAt, d.share(id, now)/2) - hs.running
		}
	}
	more := len(claimed) == limit && d.cfg.MaxClaimed-d.total >= threshold
	d.heldBack = len(claimed) == limit || len(skip) > 0 || len(skipCos) > 0 || capped
	d.mu.Unlock()
	for _, o := range direct {
		d.results <- o
	}
	return more, nil
}

// start takes one delivery leased to this dispatcher (by a claim, or handed over by capture): it
// counts it as held, and sends it now or queues it behind its webhook's requests in flight. A
// delivery of a webhook deleted or turned off since is not sent: the outcome returned (ok) gives
// it back or fails it, for the caller to pass to the recorder once d.mu is released. Called with
// d.mu held.
func (d *Dispatcher) start(ctx, sendCtx context.Context, workers *sync.WaitGroup, c store.Claimed, seq int64, h *cached,
	ids *store.PublicIDs, now time.Time) (outcome, bool) {
	if h == nil || h.w == nil {
		// Deleted since the claim: its deliveries go with it.
		return outcome{rec: store.AttemptResult{DeliveryID: c.ID, LeaseToken: c.LeaseToken}, release: true}, true
	}
	j := job{c: c, seq: seq, w: h.w, cred: h.cred, ids: ids, sendBy: d.sendBy(c, now)}
	if !h.w.Active {
		return d.inactive(j), true
	}
	hs := d.busy[c.WebhookID]
	if hs == nil {
		hs = &hookState{company: c.CompanyID}
		d.busy[c.WebhookID] = hs
	}
	if d.rates[c.WebhookID] == nil {
		d.rates[c.WebhookID] = &hookRate{since: now}
	}
	d.total++
	d.held[c.CompanyID]++
	if hs.running >= d.cfg.PerWebhook {
		hs.queue = append(hs.queue, j)
		return outcome{}, false
	}
	hs.running++
	workers.Add(1)
	go d.work(ctx, sendCtx, workers, j)
	return outcome{}, false
}

// sendBy is the last moment an attempt of c may start: its lease's end (counted from the local
// time before the statement that leased it, so it is never later than the database's) less an
// attempt (AttemptTimeout) and as long again to write its result. A delivery that waited in memory
// past it (for a rate-limit token, behind its webhook's slow requests, for a send slot) is given
// back unsent: its lease may already have passed to another replica, which would send it too.
func (d *Dispatcher) sendBy(c store.Claimed, now time.Time) time.Time {
	from := c.Leased
	if from.IsZero() || from.After(now) {
		from = now
	}
	return from.Add(d.cfg.Lease - 2*d.cfg.AttemptTimeout)
}

// attempt sends j, unless it must not be sent now, and returns what the recorder is to write: the
// attempt, a failure without a request (its webhook was turned off or its company disabled
// while it waited), or the lease given back unsent — when stopping, when another replica
// released this claim (this one was presumed dead), when its webhook was deleted, or when its
// lease is too short now for an attempt (see sendBy). The token decides, so a claim taken since
// is left alone.
func (d *Dispatcher) attempt(ctx, sendCtx context.Context, j job) outcome {
	giveBack := outcome{rec: store.AttemptResult{DeliveryID: j.c.ID, LeaseToken: j.c.LeaseToken}, release: true}
	if o, stop := d.current(ctx, &j); stop {
		return o
	}
	d.awaitRate(ctx, j) // a limited webhook's request waits for a token, until j.sendBy at most
	d.waitClaimable(ctx)
	if ctx.Err() != nil || d.fenced(j) {
		return giveBack
	}
	if o, stop := d.current(ctx, &j); stop { // changed while it waited
		return o
	}
	late := func() outcome {
		d.logs.do("lease", func() {
			d.log.Warn().Int64("webhook", j.c.WebhookID).Msg("deliveries waited in memory until their lease was nearly over (rate limit, slow endpoint or no free send slot); given back unsent, to be claimed again")
		})
		return giveBack
	}
	if !time.Now().Before(j.sendBy) {
		return late()
	}
	d.slots.acquire(j.c.CompanyID, j.c.WebhookID)
	if !time.Now().Before(j.sendBy) {
		d.slots.abandon(j.c.CompanyID, j.c.WebhookID)
		return late()
	}
	r := d.sender.send(sendCtx, j.w, j.cred, j.c.Payload, j.ids.Delivery(j.c.CompanyID, j.c.ID))
	d.slots.release(j.c.CompanyID, j.c.WebhookID, r.duration)
	return d.outcomeOf(j, r)
}

// current brings j's webhook up to date before it is sent: a job waits in memory (queued behind
// its webhook's requests, for a rate-limit token), and its webhook may have been changed, turned
// off, deleted or its company disabled meanwhile; each of these notifies walhook_webhooks, which
// starts a new cache epoch (as does a reconnect of the listener). While the cached webhook is of
// the current epoch it costs a map look-up; after a change one job per webhook reloads it and the
// others wait for that. stop: j is not to be sent, and the outcome says what becomes of it.
func (d *Dispatcher) current(ctx context.Context, j *job) (outcome, bool) {
	giveBack := outcome{rec: store.AttemptResult{DeliveryID: j.c.ID, LeaseToken: j.c.LeaseToken}, release: true}
	id := j.c.WebhookID
	var e *cached
	for e == nil {
		d.mu.Lock()
		if c := d.cache[id]; c != nil && c.epoch == d.cacheEpoch {
			e = c
			d.mu.Unlock()
			break
		}
		if ch := d.reloading[id]; ch != nil {
			d.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return giveBack, true
			}
		}
		ch := make(chan struct{})
		d.reloading[id] = ch
		d.mu.Unlock()
		hooks, err := d.webhooks(ctx, []store.Claimed{j.c})
		d.mu.Lock()
		delete(d.reloading, id)
		close(ch)
		d.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				d.logs.do("webhooks", func() { d.log.Error().Err(err).Msg("reload a held delivery's webhook; given back") })
			}
			return giveBack, true
		}
		e = hooks[id]
	}
	if e.w == nil {
		return giveBack, true // deleted: its deliveries go with it
	}
	j.w, j.cred = e.w, e.cred
	if !e.w.Active {
		return d.inactive(*j), true
	}
	return outcome{}, false
}

// work sends j, then the jobs queued behind it for the same webhook.
func (d *Dispatcher) work(ctx, sendCtx context.Context, workers *sync.WaitGroup, j job) {
	defer workers.Done()
	for {
		d.results <- d.attempt(ctx, sendCtx, j)
		d.mu.Lock()
		d.total--
		if d.held[j.c.CompanyID]--; d.held[j.c.CompanyID] == 0 {
			delete(d.held, j.c.CompanyID)
		}
		if r := d.rates[j.c.WebhookID]; r != nil {
			r.n++
		}
		hs := d.busy[j.c.WebhookID]
		if len(hs.queue) > 0 {
			j = hs.queue[0]
			hs.queue = hs.queue[1:]
			// Half the share sent: claim the next batch while the rest is being sent.
			signal := d.heldBack && len(hs.queue) == hs.refill
			d.mu.Unlock()
			if signal {
				select {
				case d.slotFreed <- struct{}{}:
				default:
				}
			}
			continue
		}
		hs.running--
		if hs.running == 0 {
			delete(d.busy, j.c.WebhookID)
		}
		signal := d.heldBack
		d.mu.Unlock()
		if signal {
			select {
			case d.slotFreed <- struct{}{}:
			default:
			}
		}
		return
	}
}

func (d *Dispatcher) outcomeOf(j job, r result) outcome {
	if r.class == classCancelled {
		return outcome{rec: store.AttemptResult{DeliveryID: j.c.ID, LeaseToken: j.c.LeaseToken}, release: true}
	}
	if _, ok := r.request.Headers[signature.HeaderSignature]; ok {
		// History masks the signature in every read (a credential-looking name), so the
		// attempt row stores the mask: ~90 bytes of WAL per attempt that no one could read.
		r.request.Headers[signature.HeaderSignature] = webhook.Mask
	}
	n := j.c.Attempts + 1
	state, oc, next := d.cfg.nextAttempt(r.class, n-j.c.AttemptsBase, r.retryAfter, r.hasRetryAfter, r.started, jitterRand)
	rec := store.AttemptResult{
		DeliveryID: j.c.ID, LeaseToken: j.c.LeaseToken, CompanyID: j.c.CompanyID, WebhookID: j.c.WebhookID,
		N: n, StartedAt: r.started, DurationMS: r.duration.Milliseconds(),
		RequestMethod: r.request.Method, RequestURL: r.request.URL, RequestHeaders: r.request.Headers,
		RequestBody: r.request.Body, BodyIsEvent: r.bodyIsEvent, ResponseHeaders: r.respHeaders, Outcome: oc, Trigger: "auto",
		State: state, NextAttemptAt: next, Gone: r.class == classGone, TouchWebhook: true,
	}
	if j.c.ResyncAt != nil {
		rec.Trigger = "resync"
	}
	if r.status != 0 {
		st := r.status
		rec.ResponseStatus = &st
		body := r.respBody
		rec.ResponseBody = &body
	}
	if r.errText != "" {
		e := r.errText
		rec.Error = &e
	}
	d.m.attempts.WithLabelValues(string(oc), r.label).Inc()
	d.m.duration.WithLabelValues(string(oc)).Observe(r.duration.Seconds())
	if j.c.Attempts == 0 && j.c.ResyncAt == nil {
		d.m.firstLatency.Observe(max(0, r.started.Sub(j.c.CapturedAt).Seconds()))
	}
	return outcome{rec: rec}
}

// inactive fails a delivery of a webhook that was turned off: nothing is sent.
func (d *Dispatcher) inactive(j job) outcome {
	e := "not sent: the webhook is turned off"
	if j.w.DisabledReason != nil {
		e += " (" + *j.w.DisabledReason + ")"
	}
	d.m.attempts.WithLabelValues(string(webhook.OutcomeFailed), "inactive").Inc()
	rec := store.AttemptResult{
		DeliveryID: j.c.ID, LeaseToken: j.c.LeaseToken, CompanyID: j.c.CompanyID, WebhookID: j.c.WebhookID,
		N: j.c.Attempts + 1, StartedAt: time.Now(), RequestMethod: string(j.w.Method), RequestURL: j.w.URL,
		Error: &e, Outcome: webhook.OutcomeFailed, Trigger: "auto", State: webhook.DeliveryFailed,
	}
	if j.c.ResyncAt != nil {
		rec.Trigger = "resync"
	}
	return outcome{rec: rec}
}

// webhooks returns the claimed deliveries' webhooks (and OAuth credentials) from the cache,
// loading what is missing or stale in one query each.
func (d *Dispatcher) webhooks(ctx context.Context, claimed []store.Claimed) (map[int64]*cached, error) {
	now := time.Now()
	out := make(map[int64]*cached, 4)
	var load []int64
	d.mu.Lock()
	epoch := d.cacheEpoch
	for _, c := range claimed {
		if _, seen := out[c.WebhookID]; seen {
			continue
		}
		e := d.cache[c.WebhookID]
		if e != nil && e.epoch == epoch && now.Sub(e.loaded) < d.cfg.WebhookCacheTTL {
			out[c.WebhookID] = e
			continue
		}
		out[c.WebhookID] = nil
		load = append(load, c.WebhookID)
	}
	d.mu.Unlock()
	if len(load) == 0 {
		return out, nil
	}
	ws, err := d.st.DispatchWebhooks(ctx, load)
	if err != nil {
		return nil, fmt.Errorf("load webhooks: %w", err)
	}
	var credIDs []int64
	for _, w := range ws {
		if w.OAuthID != nil {
			credIDs = append(credIDs, *w.OAuthID)
		}
	}
	creds := map[int64]*webhook.OAuthCredential{}
	if len(credIDs) > 0 {
		cs, err := d.st.DispatchOAuthCredentials(ctx, credIDs)
		if err != nil {
			return nil, fmt.Errorf("load oauth credentials: %w", err)
		}
		for i := range cs {
			creds[cs[i].ID] = &cs[i]
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) > 4*d.cfg.Workers+1024 {
		for id, e := range d.cache {
			if now.Sub(e.loaded) >= d.cfg.WebhookCacheTTL {
				delete(d.cache, id)
			}
		}
	}
	for _, id := range load {
		out[id] = &cached{loaded: now, epoch: epoch}
	}
	for i := range ws {
		w := ws[i]
		e := &cached{w: &w, loaded: now, epoch: epoch}
		if w.OAuthID != nil {
			e.cred = creds[*w.OAuthID]
		}
		out[w.ID] = e
	}
	for _, id := range load {
		d.cache[id] = out[id]
	}
	return out, nil
}

// forget drops cached webhooks: all of them (a change notification) or some.
func (d *Dispatcher) forget(ids ...int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ids) == 0 {
		d.cacheEpoch++
		return
	}
	for _, id := range ids {
		delete(d.cache, id)
	}
}

// recordLoop writes results in batches while sending goes on: results are collected from every
// worker as they arrive, and whatever has gathered while the previous statement ran is written
// by the next one (up to RecordBatch per statement). At a high rate a statement carries hundreds
// of results; at a low rate a result is written at once.
func (d *Dispatcher) recordLoop(ctx context.Context) {
	type pending struct {
		batch     []store.AttemptResult
		relIDs    []int64
		relTokens []string
	}
	var cur pending
	add := func(o outcome) {
		if o.release {
			cur.relIDs = append(cur.relIDs, o.rec.DeliveryID)
			cur.relTokens = append(cur.relTokens, o.rec.LeaseToken)
		} else {
			cur.batch = append(cur.batch, o.rec)
		}
	}
	done := make(chan struct{}, 1)
	flushing := false
	start := func() {
		p := cur
		cur = pending{}
		flushing = true
		go func() {
			for len(p.batch) > 0 || len(p.relIDs) > 0 {
				nb, nr := min(len(p.batch), d.cfg.RecordBatch), min(len(p.relIDs), d.cfg.RecordBatch)
				d.flush(ctx, p.batch[:nb], p.relIDs[:nr], p.relTokens[:nr])
				p.batch, p.relIDs, p.relTokens = p.batch[nb:], p.relIDs[nr:], p.relTokens[nr:]
			}
			done <- struct{}{}
		}()
	}
	// At most one statement's worth of results (RecordBatch) waits for the next statement; beyond
	// it the workers wait to hand theirs over (and so send and claim nothing new). Sending never
	// runs ahead of recording by more than the statement being written, the one gathering and
	// resultsBuffer: that bounds memory, keeps results well within their leases, and bounds what
	// a crash sends twice (sent, not yet recorded). A larger bound buys no throughput: statements
	// run one at a time and carry at most RecordBatch each, so when the recorder is the limit it
	// writes full statements back to back either way; it only let a burst (a restart into a
	// backlog, whose hand-off sends at once) run up to 4 × RecordBatch ahead, which kill -9 turned
	// into duplicates (docs/benchmarks.md, "Issue 14: the data path").
	maxPending := d.cfg.RecordBatch
	results := d.results
	for results != nil || flushing {
		in := results
		if len(cur.batch)+len(cur.relIDs) >= maxPending {
			in = nil
		}
		select {
		case o, ok := <-in:
			if !ok {
				results = nil
				break
			}
			add(o)
		case <-done:
			flushing = false
		}
		if !flushing && (len(cur.batch) > 0 || len(cur.relIDs) > 0) {
			start()
		}
	}
}

func (d *Dispatcher) flush(ctx context.Context, batch []store.AttemptResult, relIDs []int64, relTokens []string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if len(relIDs) > 0 {
		if err := d.st.DispatchRelease(ctx, relIDs, relTokens); err != nil {
			d.logs.do("release", func() { d.log.Error().Err(err).Msg("give back leased deliveries") })
		}
	}
	if len(batch) == 0 {
		return
	}
	cutoff := time.Now().Add(-d.cfg.DisableAfter)
	// Retried until written or the flush budget ends, backing off up to recordRetryMax: a
	// result dropped here is only retried after its lease (2 m by default), and sent again,
	// so an outage of a few seconds (a PostgreSQL restart) would cost that much delivery time.
	// A write after the lease was taken over changes nothing but history (the token decides).
	// Bad data (a constraint error) is not retried: the same rows would fail again.
	var off []store.DisabledWebhook
	var err error
	var bad *store.ConstraintError
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, recordRetryMax) {
		tctx, tcancel := context.WithTimeout(ctx, recordTryTimeout)
		off, err = d.st.DispatchRecord(tctx, batch, cutoff)
		tcancel()
		if err == nil || errors.As(err, &bad) || !waitCtx(ctx, backoff) {
			break
		}
	}
	if err != nil {
		d.m.recordFailures.Inc()
		d.logs.do("record", func() {
			d.log.Error().Err(err).Int("results", len(batch)).Msg("record attempts; the deliveries will be retried after their lease")
		})
		return
	}
	for _, w := range off {
		reason := "failing"
		if w.Gone {
			reason = "gone"
		}
		d.m.disabled.WithLabelValues(reason).Inc()
		d.forget(w.ID)
		d.log.Info().Int64("webhook", w.ID).Str("reason", reason).Msg("webhook turned off")
	}
}

// resultsBuffer is how many results the workers may hand over without waiting while the recorder
// is busy starting a statement: a little slack for scheduling, not a queue (the recorder's own
// bound is RecordBatch; everything in this buffer is sent and not yet recorded as well).
const resultsBuffer = 64

// recordTryTimeout bounds one write of results; recordRetryMax caps the wait between two.
const (
	recordTryTimeout = 10 * time.Second
	recordRetryMax   = 2 * time.Second
)

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

// listenLoop wakes the claim loop on walhook_deliveries and drops the webhook cache on
// walhook_webhooks, reconnecting after errors. Polling covers the gaps.
func (d *Dispatcher) listenLoop(ctx context.Context) {
	for ctx.Err() == nil {
		l, err := d.st.DispatchListen(ctx)
		if err == nil {
			d.forget()
			d.Wake() // whatever was notified while not listening
			for {
				ch, werr := l.Wait(ctx)
				if werr != nil {
					err = werr
					break
				}
				if ch == "walhook_webhooks" {
					d.forget()
				}
				d.Wake()
			}
			l.Close(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil {
			return
		}
		d.logs.do("listen", func() { d.log.Warn().Err(err).Msg("listen for deliveries; polling until reconnected") })
		t := time.NewTimer(max(d.cfg.PollInterval, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) statsLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.StatsInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, d.cfg.StatsInterval)
		s, err := d.st.DispatchQueueStats(qctx)
		cancel()
		if err == nil {
			d.m.queue.WithLabelValues("due").Set(float64(s.Due))
			d.m.queue.WithLabelValues("scheduled").Set(float64(s.Scheduled))
			d.m.queue.WithLabelValues("leased").Set(float64(s.Leased))
			d.m.oldestDue.Set(s.OldestDue.Seconds())
		} else if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			d.logs.do("stats", func() { d.log.Warn().Err(err).Msg("read queue depth") })
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rateLimiter runs a log call at most once per interval per key.
type rateLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const logEvery = 10 * time.Second

func (r *rateLimiter) do(key string, f func()) {
	r.mu.Lock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	now := time.Now()
	if now.Sub(r.last[key]) < logEvery {
		r.mu.Unlock()
		return
	}
	r.last[key] = now
	r.mu.Unlock()
	f()
}
