package capture

import (
	"context"
	"errors"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// poll claims outbox rows until ctx ends: at once after a NOTIFY walhook_outbox, at least every
// PollInterval, and again at once while claims come back full.
func (c *Capture) poll(ctx context.Context) error {
	var l *store.Listener
	defer func() {
		if l != nil {
			closeListener(l)
		}
	}()
	for {
		if l == nil {
			var err error
			if l, err = c.source().OutboxListen(ctx); err != nil {
				l = nil
				if ctx.Err() != nil {
					return nil
				}
				c.limiter.Msg(c.log.Warn().Err(err), "outbox listener unavailable; polling on the interval")
			}
		}
		// The source epoch as stored (epoch.go): poll mode has no replication session that could
		// tell a new source; an operator starts one with `walhook slot epoch`.
		keys, err := c.storedEpoch(ctx)
		for err == nil {
			var n int
			n, err = c.pollBatch(ctx, keys)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				break
			}
			if n < c.cfg.PollBatch {
				break
			}
		}
		if err != nil && ctx.Err() == nil {
			c.limiter.Msg(c.log.Warn().Err(err), "outbox claim failed; retrying")
		}
		if err := c.waitOutbox(ctx, l); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			closeListener(l)
			l = nil
		}
	}
}

// closeListener closes the outbox listener's connection, giving it 5 s.
func closeListener(l *store.Listener) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.Close(ctx)
}

// waitOutbox waits for a notification or the poll interval. A non-nil error means the listener
// broke.
func (c *Capture) waitOutbox(ctx context.Context, l *store.Listener) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.PollInterval)
	defer cancel()
	if l == nil {
		<-wctx.Done()
		return nil
	}
	_, err := l.Wait(wctx)
	if err == nil || errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return err
}

// pollBatch claims up to PollBatch outbox rows and stores their events; it returns how many rows
// it claimed. With one database the rows are claimed, stored and deleted in one transaction. With
// two (Config.Source) the rows are claimed FOR UPDATE SKIP LOCKED in a source transaction, their
// events committed in walhook's database, then the rows deleted in that source transaction and
// it committed: a crash in between leaves the rows to be claimed again, and their source keys
// ("outbox:<id>") dedupe the replay.
func (c *Capture) pollBatch(ctx context.Context, keys sourceKeys) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	defer cancel()
	var claimed int
	var events []store.CaptureEvent
	var skips []skip
	var res fanOutResult
	var tooLarge int // newly quarantined as too_large
	ids, err := c.st.PublicIDs(cctx)
	if err != nil {
		return 0, err
	}
	two := c.twoDatabases()
	err = c.source().Tx(cctx, func(tx *store.Store) error {
		rows, err := tx.OutboxClaim(cctx, c.cfg.PollBatch, c.cfg.MaxEventBytes)
		if err != nil {
			return err
		}
		claimed = len(rows)
		if claimed == 0 {
			return nil
		}
		var b store.CaptureBatch
		var big []oversized
		claimedIDs := make([]int64, 0, len(rows))
		for _, r := range rows {
			claimedIDs = append(claimedIDs, r.ID)
			ev, o, sk := outboxEvent(c.cfg.Catalog, ids, keys, c.cfg.MaxEventBytes, r.ID, r.CompanyID, r.EventKey, r.Payload, r.PayloadBytes, r.CreatedAt)
			switch {
			case sk != nil:
				skips = append(skips, *sk)
			case o != nil:
				big = append(big, *o)
			default:
				b.Events = append(b.Events, ev)
			}
		}
		events = b.Events
		// Oversized rows are quarantined without their payloads (which the claim did not
		// read) where the events go: walhook's database, committed there at once with two
		// databases, in the claim's transaction (a savepoint each) with one.
		qst := c.st
		if !two {
			qst = tx
		}
		if tooLarge, err = c.setAside(cctx, qst, big); err != nil {
			return err
		}
		if two {
			// Each write commits in walhook's database (a refused event is quarantined there);
			// then the rows go in the source transaction that holds them.
			c.countTooLarge(tooLarge) // committed
			tooLarge = 0
			if len(b.Events) > 0 {
				if res, err = c.fanOut(cctx, c.st, b); err != nil {
					return err
				}
			}
			_, err = tx.OutboxDelete(cctx, claimedIDs)
			return err
		}
		// Inside the claim's transaction each write is a savepoint, so a refused event is
		// quarantined and the claimed rows are still deleted with the rest.
		b.OutboxIDs = claimedIDs
		res, err = c.fanOut(cctx, tx, b)
		return err
	})
	if err != nil || claimed == 0 {
		return 0, err
	}
	c.reportSkips(skips)
	c.reportFanOut(res.CaptureResult)
	if !two {
		c.countQuarantined(res) // with two databases fanOut counted them as they committed
		c.countTooLarge(tooLarge)
	}
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
