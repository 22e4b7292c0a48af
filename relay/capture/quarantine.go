package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// skipUnstorable counts an event that could neither be stored nor quarantined (PostgreSQL refused
// even the quarantine row): logged with its position and skipped, so capture goes on.
const skipUnstorable = "unstorable"

// quarantineTooLarge is the quarantine reason (walhook_capture_quarantined_total{reason}) of an
// event over Config.MaxEventBytes, set aside without its payload.
const quarantineTooLarge = "too_large"

// setAside quarantines events over Config.MaxEventBytes (decoded without their payloads) on st,
// and returns how many were new (not a replay), for the caller to count once st's writes are
// committed (countTooLarge). Each is logged with its position on a rate limiter. A transient
// error is returned (the batch is retried: the source keys dedupe); a quarantine row refused
// for good is skipped as unstorable, as in quarantine.
func (c *Capture) setAside(ctx context.Context, st *store.Store, big []oversized) (int, error) {
	added := 0
	for _, o := range big {
		cause := &store.TooLargeError{Size: o.size, Max: c.cfg.MaxEventBytes}
		qctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
		ok, err := st.CaptureQuarantineAdd(qctx, o.event, cause)
		cancel()
		switch {
		case err == nil:
		case store.Permanent(err):
			c.m.skipped.WithLabelValues(skipUnstorable).Inc()
			c.log.Error().Err(err).Str("position", o.event.SourceKey).Str("event", o.event.EventKey).
				Msg("oversized event neither delivered nor quarantined; skipped")
			continue
		default:
			return added, fmt.Errorf("quarantine oversized event: %w", err)
		}
		if ok {
			added++
		}
		c.tooLargeLog.Msg(c.log.Error().Str("position", o.event.SourceKey).Str("event", o.event.EventKey).
			Str("company", o.event.CompanyID).Int("bytes", o.size).Int("max", c.cfg.MaxEventBytes),
			"event larger than --capture-max-event-bytes; quarantined without its payload, not delivered")
	}
	return added, nil
}

// countTooLarge counts n events newly quarantined as too_large.
func (c *Capture) countTooLarge(n int) {
	if n > 0 {
		c.m.quarantined.WithLabelValues(quarantineTooLarge).Add(float64(n))
		c.m.quarantineRows.Add(float64(n))
	}
}

// fanOutResult is what fanOut did: the store's counts, and the source keys it set aside.
type fanOutResult struct {
	store.CaptureResult
	quarantined map[string]bool
	// added lists the failure class of each event newly quarantined, for the metrics: counted
	// by countQuarantined once its transaction committed.
	added []string
}

// countQuarantined counts newly quarantined events in the metrics.
func (c *Capture) countQuarantined(r fanOutResult) {
	for _, class := range r.added {
		c.m.quarantined.WithLabelValues(class).Inc()
		c.m.quarantineRows.Inc()
	}
}

func (r *fanOutResult) add(o store.CaptureResult) {
	r.Events += o.Events
	r.Deliveries += o.Deliveries
	r.UnknownCompany = append(r.UnknownCompany, o.UnknownCompany...)
	r.OutboxDeleted = append(r.OutboxDeleted, o.OutboxDeleted...)
	r.Handed = append(r.Handed, o.Handed...)
}

// fanOut stores b on st (the pool: one transaction per write; a transaction: one savepoint per
// write). When PostgreSQL refuses the data of an event (store.Permanent: a value jsonb refuses, a
// constraint, a size limit), retrying the batch can never succeed and would stop capture for
// every company; so fanOut finds the culprits by halving the batch — each half is written on its
// own, a refused half is halved again — quarantines each refused single event, and stores the
// rest. A batch with one bad event among n costs about 2·log2(n) writes. A transient error (lost
// connection, restart, deadlock, deadline) is returned as is: the caller retries the whole batch,
// whose already-stored events are de-duplicated by their source keys.
func (c *Capture) fanOut(ctx context.Context, st *store.Store, b store.CaptureBatch) (fanOutResult, error) {
	var out fanOutResult
	res, err := c.write(ctx, st, b)
	if err == nil {
		out.add(res)
		return out, nil
	}
	if !store.Permanent(err) {
		return out, err
	}
	out.quarantined = map[string]bool{}
	err = c.isolate(ctx, st, b.Events, b.OutboxIDs, err, &out)
	if err == nil && b.Position.LSN > 0 {
		// The halves were written without the position: it is stored once all of them are,
		// never before an event it covers.
		_, err = c.write(ctx, st, store.CaptureBatch{Position: b.Position})
	}
	if st == c.st {
		// Each write was its own transaction: what was quarantined is committed, even when a
		// later write failed. Inside a caller's transaction the caller counts after its commit.
		c.countQuarantined(out)
	}
	return out, err
}

// isolate writes events (and the outbox rows to delete) known to hold at least one refused
// event; cause is the refusal. See fanOut.
func (c *Capture) isolate(ctx context.Context, st *store.Store, events []store.CaptureEvent, outbox []int64, cause error, out *fanOutResult) error {
	if len(events) <= 1 {
		if len(events) == 1 {
			added, err := c.quarantine(ctx, st, events[0], cause)
			if err != nil {
				return err
			}
			out.quarantined[events[0].SourceKey] = true
			if added {
				out.added = append(out.added, store.FailureClass(cause))
			}
		}
		if len(outbox) == 0 {
			return nil
		}
		res, err := c.write(ctx, st, store.CaptureBatch{OutboxIDs: outbox})
		if err != nil && store.Permanent(err) {
			// Deleting consumed outbox rows by id refuses no data; should it ever fail so, the
			// rows stay (their events are stored or quarantined; a replay dedupes them).
			c.limiter.Msg(c.log.Error().Err(err).Int64("outbox_id", outbox[0]), "consumed outbox rows not deleted")
			return nil
		}
		if err != nil {
			return err
		}
		out.add(res)
		return nil
	}
	half := len(events) / 2
	for i, part := range [][]store.CaptureEvent{events[:half], events[half:]} {
		var ids []int64
		if i == 0 {
			ids = outbox
		}
		res, err := c.write(ctx, st, store.CaptureBatch{Events: part, OutboxIDs: ids})
		switch {
		case err == nil:
			out.add(res)
		case store.Permanent(err):
			if err := c.isolate(ctx, st, part, ids, err, out); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// quarantine sets e aside in walhook.capture_quarantine and reports whether it was new (not a
// replay). If even that is refused for good, e is logged with its position, counted as skipped
// ("unstorable") and left out: nothing may stop capture. A transient error is returned (the
// batch is retried).
func (c *Capture) quarantine(ctx context.Context, st *store.Store, e store.CaptureEvent, cause error) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	defer cancel()
	added, err := st.CaptureQuarantineAdd(qctx, e, cause)
	switch {
	case err == nil:
	case store.Permanent(err):
		c.m.skipped.WithLabelValues(skipUnstorable).Inc()
		c.log.Error().Err(err).AnErr("cause", cause).Str("position", e.SourceKey).Str("event", e.EventKey).
			Msg("event neither stored nor quarantined; skipped")
		return false, nil
	default:
		return false, fmt.Errorf("quarantine event: %w", err)
	}
	c.limiter.Msg(c.log.Error().Err(cause).Str("position", e.SourceKey).Str("event", e.EventKey).Str("company", e.CompanyID),
		"event refused by PostgreSQL; quarantined (walhook quarantine list)")
	return added, nil
}

// write runs one CaptureCommit on st with its own deadline, so isolating culprits in a large
// batch never runs out of one shared budget.
func (c *Capture) write(ctx context.Context, st *store.Store, b store.CaptureBatch) (store.CaptureResult, error) {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	defer cancel()
	start := time.Now()
	res, err := st.CaptureCommit(wctx, b)
	if err == nil {
		c.m.batch.Observe(time.Since(start).Seconds())
	}
	return res, err
}
