package capture

import (
	"context"
	"errors"

	"github.com/walhook/walhook/relay/store"
)

// poll claims outbox rows until ctx ends: at once after a NOTIFY walhook_outbox, at least every
// PollInterval, and again at once while claims come back full.
func (c *Capture) poll(ctx context.Context) error {
	var l *store.OutboxListener
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	for {
		if l == nil {
			var err error
			if l, err = c.st.OutboxListen(ctx); err != nil {
				l = nil
				if ctx.Err() != nil {
					return nil
				}
				c.limiter.log(c.log.Warn().Err(err), "outbox listener unavailable; polling on the interval")
			}
		}
		for {
			n, err := c.pollBatch(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				c.limiter.log(c.log.Warn().Err(err), "outbox claim failed; retrying")
				break
			}
			if n < c.cfg.PollBatch {
				break
			}
		}
		if err := c.waitOutbox(ctx, l); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Close()
			l = nil
		}
	}
}

// waitOutbox waits for a notification or the poll interval. A non-nil error means the listener
// broke.
func (c *Capture) waitOutbox(ctx context.Context, l *store.OutboxListener) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.PollInterval)
	defer cancel()
	if l == nil {
		<-wctx.Done()
		return nil
	}
	err := l.Wait(wctx)
	if err == nil || errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return err
}

// pollBatch claims up to PollBatch outbox rows and stores their events in one transaction; the
// rows are deleted in it. It returns how many rows it claimed.
func (c *Capture) pollBatch(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	defer cancel()
	var claimed int
	var events []store.CaptureEvent
	var skips []skip
	var res fanOutResult
	ids, err := c.st.PublicIDs(cctx)
	if err != nil {
		return 0, err
	}
	err = c.st.Tx(cctx, func(tx *store.Store) error {
		rows, err := tx.OutboxClaim(cctx, c.cfg.PollBatch)
		if err != nil {
			return err
		}
		claimed = len(rows)
		if claimed == 0 {
			return nil
		}
		b := store.CaptureBatch{OutboxIDs: make([]int64, 0, len(rows))}
		for _, r := range rows {
			b.OutboxIDs = append(b.OutboxIDs, r.ID)
			ev, sk := outboxEvent(c.cfg.Catalog, ids, r.ID, r.CompanyID, r.EventKey, r.Payload, r.CreatedAt)
			if sk != nil {
				skips = append(skips, *sk)
				continue
			}
			b.Events = append(b.Events, ev)
		}
		events = b.Events
		// Inside the claim's transaction each write is a savepoint, so a refused event is
		// quarantined and the claimed rows are still deleted with the rest.
		res, err = c.fanOut(cctx, tx, b)
		return err
	})
	if err != nil || claimed == 0 {
		return 0, err
	}
	c.reportSkips(skips)
	c.reportFanOut(res.CaptureResult)
	c.countQuarantined(res)
	unknown := make(map[string]bool, len(res.UnknownCompany))
	for _, k := range res.UnknownCompany {
		unknown[k] = true
	}
	for _, e := range events {
		if !unknown[e.SourceKey] && !res.quarantined[e.SourceKey] {
			c.m.events.WithLabelValues("outbox", e.EventKey).Inc()
		}
	}
	return claimed, nil
}
