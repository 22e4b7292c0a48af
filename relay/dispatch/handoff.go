package dispatch

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// Hand-off: the capture leader passes fresh deliveries to the dispatcher in its own process
// without a claim. Before a fan-out transaction capture asks HandoffPlan what it may lease to
// this dispatcher; the transaction inserts those deliveries already leased under the plan's claim
// token (store.CaptureBatch.Handoff); once it commits, capture gives them to Take, which starts
// them exactly as if a claim had returned them. A delivery so handed costs no claim statement
// and no lease update (one row version less), and is sent without waiting for a claim.
//
// The plan is the claim's own bounds (companyPlan): at most what is free of MaxClaimed, a
// webhook's share (what it sends in Lease/4 at its observed rate, within its company's cap per
// webhook), nothing of a company at its share. A failing webhook's deliveries, and a
// rate-limited one's (webhook.Webhook.Queued: they wait for tokens under claims sized by the
// limit), are never handed (CaptureCommit's must_claim): they wait in the table and are claimed
// like any other, so the in-memory path never holds a hanging endpoint's backlog. Everything
// that is not handed is inserted unleased and claimed as before, by any replica. A handed
// delivery is in the table from the start, leased: if this process dies, the other replicas
// release it with the rest of its claims (see Replicas in doc.go).

// HandoffPlan returns what the next fan-out transaction of the capture leader in this process
// may insert already leased to this dispatcher, or nil when it may hand nothing over: not
// running, not healthy (see Replicas), or its memory bound is full.
func (d *Dispatcher) HandoffPlan() *store.Handoff {
	if !d.claimable() {
		return nil
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		return nil
	}
	free := min(d.cfg.MaxClaimed-d.total, d.cfg.ClaimBatch)
	if free <= 0 {
		return nil
	}
	p := &store.Handoff{Lease: d.cfg.Lease, Limit: free, PerWebhook: d.cfg.claimPerWebhook, Shares: map[int64]int{}}
	cp := d.companyPlan(max(1, min(d.cfg.ClaimBatch, d.cfg.MaxClaimed)/8))
	p.SkipCompanies = cp.skip
	for id, hs := range d.busy {
		// Up to the webhook's share (within its company's cap per webhook), not only below half
		// of it as a claim: a claim is skipped at half so that the next one runs while the rest
		// is sent, but a hand-off costs no statement, and what it does not take would be claimed
		// into the same share anyway.
		sh := d.share(id, now)
		if hc := cp.hookCap[id]; hc > 0 {
			sh = min(sh, hc)
		}
		room := sh - hs.running - len(hs.queue)
		if room <= 0 {
			p.SkipWebhooks = append(p.SkipWebhooks, id)
			continue
		}
		p.Shares[id] = room
	}
	for id, r := range d.rates {
		if _, busy := d.busy[id]; !busy && now.Sub(r.since) <= time.Minute {
			if sh := d.share(id, now); sh > d.cfg.claimPerWebhook {
				p.Shares[id] = sh
			}
		}
	}
	p.Token = d.replicaID + ":" + strconv.FormatInt(d.claimSeq.Add(1), 10)
	return p
}

// Take starts the deliveries a fan-out transaction inserted under a HandoffPlan
// (store.CaptureResult.Handed), in their order. When the dispatcher has stopped meanwhile, or
// their webhooks cannot be loaded, they are given back (their leases released) for any replica
// to claim.
func (d *Dispatcher) Take(ctx context.Context, handed []store.Claimed) {
	if len(handed) == 0 {
		return
	}
	tok := handed[0].LeaseToken
	seq, err := strconv.ParseInt(tok[strings.LastIndexByte(tok, ':')+1:], 10, 64)
	hooks, herr := d.webhooks(ctx, handed)
	var ids *store.PublicIDs
	if err == nil && herr == nil {
		ids, err = d.st.PublicIDs(ctx) // loaded once, then cached by the store
	}
	if err == nil {
		err = herr
	}
	now := time.Now()
	d.mu.Lock()
	r := d.running
	if r == nil || err != nil {
		d.mu.Unlock()
		d.giveBack(ctx, handed)
		if err != nil {
			d.logs.handoff.Msg(d.log.Error().Err(err), "take handed deliveries; given back")
		}
		return
	}
	d.m.taken.WithLabelValues("handoff").Add(float64(len(handed)))
	direct, _ := d.startAll(r, handed, seq, hooks, ids, now) // direct: for the recorder after unlocking (it takes d.mu too)
	if len(direct) > 0 {
		// Counted as a worker, so Run closes the results only after these are in.
		r.workers.Add(1)
		go func() {
			defer r.workers.Done()
			for _, o := range direct {
				d.results <- o
			}
		}()
	}
	d.mu.Unlock()
}

// giveBack releases the leases of handed deliveries the dispatcher will not send.
func (d *Dispatcher) giveBack(ctx context.Context, handed []store.Claimed) {
	ids := make([]int64, len(handed))
	tokens := make([]string, len(handed))
	for i, c := range handed {
		ids[i], tokens[i] = c.ID, c.LeaseToken
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.st.DispatchRelease(rctx, ids, tokens); err != nil {
		d.logs.release.Msg(d.log.Error().Err(err), "give back handed deliveries; they wait for their lease")
	}
}
