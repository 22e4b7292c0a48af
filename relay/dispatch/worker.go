package dispatch

import (
	"context"
	"time"

	"github.com/walhook/walhook/relay/signature"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// The worker pool: it holds the deliveries leased to this dispatcher (claimed by the producer or
// handed over by capture) and sends them. A webhook has at most PerWebhook requests running; the
// rest of its deliveries wait in its queue, and the worker that finishes one takes the next
// (work). Every attempt first brings its webhook up to date (current), waits for a rate-limit
// token and a fair send slot, and is given back unsent when its lease has too little room left
// (sendBy). Its result goes to the completer (d.results).

// hookState is what a webhook holds in memory: its jobs running and queued.
type hookState struct {
	company string
	running int
	queue   []job
	refill  int // when the queue drops to this length, wake the claim loop (if held back)
}

// job is one delivery held in memory, with what sending it needs.
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

// startAll starts deliveries leased to this dispatcher by one claim or hand-off (claim number
// seq), in their order, and sets each of their webhooks' refill mark: when its queue drops to
// it, a worker wakes the claim loop (if held back), so the next batch is claimed while the rest is
// sent. It returns the outcomes of deliveries not to be sent, for the caller to pass to the
// recorder once d.mu is released, and how many deliveries each webhook got. Called with d.mu
// held.
func (d *Dispatcher) startAll(r *run, claimed []store.Claimed, seq int64, hooks map[int64]*cached, ids *store.PublicIDs,
	now time.Time) (direct []outcome, perHook map[int64]int) {
	perHook = make(map[int64]int, 4)
	for _, c := range claimed {
		perHook[c.WebhookID]++
		if o, ok := d.start(r, c, seq, hooks[c.WebhookID], ids, now); ok {
			direct = append(direct, o)
		}
	}
	for id := range perHook {
		if hs := d.busy[id]; hs != nil {
			hs.refill = max(d.cfg.skipAt, d.share(id, now)/2) - hs.running
		}
	}
	return direct, perHook
}

// start takes one delivery leased to this dispatcher (by a claim, or handed over by capture): it
// counts it as held, and sends it now or queues it behind its webhook's requests in flight. A
// delivery of a webhook deleted or turned off since is not sent: the outcome returned (ok) gives
// it back or fails it, for the caller to pass to the recorder once d.mu is released. Called with
// d.mu held.
func (d *Dispatcher) start(r *run, c store.Claimed, seq int64, h *cached, ids *store.PublicIDs, now time.Time) (outcome, bool) {
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
	r.workers.Add(1)
	go d.work(r, j)
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
		d.logs.lease.Msg(d.log.Warn().Int64("webhook", j.c.WebhookID),
			"deliveries waited in memory until their lease was nearly over (rate limit, slow endpoint or no free send slot); given back unsent, to be claimed again")
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
				d.logs.webhooks.Msg(d.log.Error().Err(err), "reload a held delivery's webhook; given back")
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
func (d *Dispatcher) work(r *run, j job) {
	defer r.workers.Done()
	for {
		d.results <- d.attempt(r.ctx, r.sendCtx, j)
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
				notify(d.slotFreed)
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
			notify(d.slotFreed)
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
		DeliveryID: j.c.ID, EventAt: j.c.EventAt, LeaseToken: j.c.LeaseToken, CompanyID: j.c.CompanyID, WebhookID: j.c.WebhookID,
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
		DeliveryID: j.c.ID, EventAt: j.c.EventAt, LeaseToken: j.c.LeaseToken, CompanyID: j.c.CompanyID, WebhookID: j.c.WebhookID,
		N: j.c.Attempts + 1, StartedAt: time.Now(), RequestMethod: string(j.w.Method), RequestURL: j.w.URL,
		Error: &e, Outcome: webhook.OutcomeFailed, Trigger: "auto", State: webhook.DeliveryFailed,
	}
	if j.c.ResyncAt != nil {
		rec.Trigger = "resync"
	}
	return outcome{rec: rec}
}
