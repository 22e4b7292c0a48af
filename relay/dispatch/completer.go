package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// The completer: the recorder, which writes the workers' results (attempts, and leases given
// back unsent) in batches while sending goes on, one statement at a time (Store.DispatchRecord,
// Store.DispatchRelease), and turns off the webhooks the database says are to be turned off.

// outcome is a result for the recorder: an attempt to write, or a lease to give back.
type outcome struct {
	rec     store.AttemptResult
	release bool
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
			d.logs.release.Msg(d.log.Error().Err(err), "give back leased deliveries")
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
		if d.recordTried != nil {
			d.recordTried(err)
		}
		if err == nil || errors.As(err, &bad) || !waitCtx(ctx, backoff) {
			break
		}
	}
	if err != nil {
		d.m.recordFailures.Inc()
		d.logs.record.Msg(d.log.Error().Err(err).Int("results", len(batch)), "record attempts; the deliveries will be retried after their lease")
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
