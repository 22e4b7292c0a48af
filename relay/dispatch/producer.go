package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// The producer: the claim loop. It claims due deliveries (Store.DispatchClaim) whenever new
// ones are announced (Wake, NOTIFY), a worker frees room that a claim was held back for, or the
// poll is due, and hands what it claimed to the worker pool (start). What a claim may take —
// the in-memory bound, each company's and each webhook's share — is decided from what is held
// now; see "Isolation and throughput" and "Fair shares" in the package documentation.

// hookRate is a webhook's observed send rate: sent since `since`, folded into perSec (a moving
// average) every rateEvery.
type hookRate struct {
	n      int
	since  time.Time
	perSec float64
}

const rateEvery = 250 * time.Millisecond

// claimLoop claims until r.ctx ends.
func (d *Dispatcher) claimLoop(r *run) {
	ctx := r.ctx
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
			more, err := d.claimOnce(r, &announced)
			if err != nil {
				if ctx.Err() == nil {
					d.logs.claim.Msg(d.log.Error().Err(err), "claim deliveries")
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
func (d *Dispatcher) claimOnce(r *run, announced *bool) (more bool, err error) {
	ctx := r.ctx
	now := time.Now()
	if !d.claimable() {
		return false, nil // the heartbeat wakes the claim loop when it succeeds again
	}
	limited := d.rateLimited(ctx, now)
	threshold := max(1, min(d.cfg.ClaimBatch, d.cfg.MaxClaimed)/8)
	if *announced {
		d.giveBackOverCap(threshold) // room for the announced deliveries' webhooks (see there)
	}
	p, ok := d.planClaim(now, limited, threshold, *announced)
	if !ok {
		return false, nil
	}
	limit := p.limit(d.cfg.ClaimBatch)
	if limit <= 0 {
		return false, nil
	}
	*announced = false
	seq, claimed, err := d.claim(ctx, p, limit)
	if err != nil {
		return false, err
	}
	if len(claimed) == 0 {
		d.mu.Lock()
		d.heldBack = p.skipsAny()
		d.mu.Unlock()
		return false, nil
	}
	d.m.taken.WithLabelValues("claim").Add(float64(len(claimed)))
	hooks, ids, err := d.claimedWebhooks(ctx, claimed)
	if err != nil {
		return false, err
	}
	return d.startClaimed(r, p, claimed, seq, hooks, ids, limit, threshold, now), nil
}

// claimPlan is what the next claim may take, decided from what is held in memory now.
type claimPlan struct {
	free        int            // MaxClaimed less what is held
	skip        []int64        // webhooks at (half) their share: left out of the claim
	shares      map[int64]int  // what each webhook may get, when not claimPerWebhook
	skipCos     []string       // companies at their share: left out of the claim
	rooms       map[string]int // what each other company holding work may still take
	newcomerCap int            // what a company holding nothing yet may take
}

// skipsAny reports whether the plan left a webhook or a company out: a claim that found nothing
// may still have been held back by them.
func (p *claimPlan) skipsAny() bool { return len(p.skip) > 0 || len(p.skipCos) > 0 }

// planClaim decides what the next claim may take, or reports (ok false) that no claim is to run
// now: the in-memory bound has less room than threshold, or every company holding work is at
// its share and nothing new was announced. Either way it marks the claim held back, so a worker
// that frees room wakes the claim loop.
func (d *Dispatcher) planClaim(now time.Time, limited map[int64]int, threshold int, announced bool) (claimPlan, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	free := d.cfg.MaxClaimed - d.total
	if free < threshold && d.total > 0 {
		d.heldBack = true
		return claimPlan{}, false
	}
	cp := d.companyPlan(threshold)
	if !announced && len(cp.rooms) == 0 && len(cp.skip) > 0 {
		// Every company holding work is at its share, and no new deliveries were announced
		// since the last claim: a claim could find only other companies' retries, which the
		// poll finds.
		d.heldBack = true
		return claimPlan{}, false
	}
	skip, shares := d.webhookShares(now, cp, limited)
	return claimPlan{free: free, skip: skip, shares: shares, skipCos: cp.skip, rooms: cp.rooms, newcomerCap: cp.newcomerCap}, true
}

// webhookShares returns the webhooks a claim leaves out (holding at least half their share, or
// their company's cap per webhook, or their rate limit's share) and what the others may get
// (their share less what they hold; an idle webhook that sent fast recently keeps its share; a
// rate-limited one gets no more than its limit sends in an eighth of the lease). Called with
// d.mu held.
func (d *Dispatcher) webhookShares(now time.Time, cp companyPlan, limited map[int64]int) (skip []int64, shares map[int64]int) {
	shares = map[int64]int{}
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
	return skip, shares
}

// limit is how many deliveries the claim asks for: what is free, at most batch. A company's room
// below that needs the claim's per-company window (a slower statement, see Store.DispatchClaim);
// when the room is at least half a claim, or the company is the only one holding work, a smaller
// claim does the same with the plain statement.
func (p *claimPlan) limit(batch int) int {
	limit := min(p.free, batch)
	if limit <= 0 {
		return limit
	}
	for _, room := range p.rooms {
		if room < limit && (2*room >= limit || len(p.rooms) == 1 && len(p.skipCos) == 0) {
			limit = room
		}
	}
	if p.newcomerCap < limit && 2*p.newcomerCap >= limit {
		limit = p.newcomerCap
	}
	return limit
}

// claim runs the claim statement under a new claim token; seq is the token's number.
func (d *Dispatcher) claim(ctx context.Context, p claimPlan, limit int) (seq int64, claimed []store.Claimed, err error) {
	seq = d.claimSeq.Add(1)
	token := d.replicaID + ":" + strconv.FormatInt(seq, 10)
	claimed, err = d.st.DispatchClaim(ctx, store.ClaimParams{
		Limit: limit, PerWebhook: d.cfg.claimPerWebhook, Lease: d.cfg.Lease, Token: token, SkipWebhooks: p.skip,
		Shares: p.shares, SkipCompanies: p.skipCos, Rooms: p.rooms, PerCompany: p.newcomerCap,
	})
	if err != nil {
		return seq, nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return seq, claimed, nil
}

// claimedWebhooks loads what sending the claimed deliveries needs: their webhooks (through the
// cache) and the public ids. When that fails the claim is given back rather than left to its
// lease.
func (d *Dispatcher) claimedWebhooks(ctx context.Context, claimed []store.Claimed) (map[int64]*cached, *store.PublicIDs, error) {
	hooks, err := d.webhooks(ctx, claimed)
	var ids *store.PublicIDs
	if err == nil {
		ids, err = d.st.PublicIDs(ctx) // loaded once, then cached by the store
	}
	if err != nil {
		for _, c := range claimed {
			d.results <- outcome{rec: store.AttemptResult{DeliveryID: c.ID, LeaseToken: c.LeaseToken}, release: true}
		}
		return nil, nil, err
	}
	return hooks, ids, nil
}

// startClaimed hands the claimed deliveries to the worker pool and decides whether to claim
// again at once (more: the claim came back full and room is left). It marks the claim held
// back when the claim was full, left something out, or gave a webhook its whole share: then a
// worker freeing room wakes the claim loop.
func (d *Dispatcher) startClaimed(r *run, p claimPlan, claimed []store.Claimed, seq int64, hooks map[int64]*cached,
	ids *store.PublicIDs, limit, threshold int, now time.Time) (more bool) {
	d.mu.Lock()
	direct, perHook := d.startAll(r, claimed, seq, hooks, ids, now)
	capped := false // a webhook got its full share: claim again as soon as a slot frees
	for id, n := range perHook {
		allowed, ok := p.shares[id]
		if !ok {
			allowed = d.cfg.claimPerWebhook
		}
		if n >= allowed {
			capped = true
		}
	}
	more = len(claimed) == limit && d.cfg.MaxClaimed-d.total >= threshold
	d.heldBack = len(claimed) == limit || p.skipsAny() || capped
	d.mu.Unlock()
	for _, o := range direct {
		d.results <- o
	}
	return more
}
