package dispatch

import (
	"context"
	"errors"
	"time"
)

// statsLoop sets the queue gauges (walhook_delivery_queue_depth,
// walhook_delivery_oldest_due_age_seconds) every StatsInterval from one statement
// (Store.DispatchQueueStats), until ctx ends.
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
			d.logs.stats.Msg(d.log.Warn().Err(err), "read queue depth")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
