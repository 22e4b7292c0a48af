// Package retention deletes old history in the background: finished deliveries (their attempts go
// with them) and then the events no delivery references any more, once they are older than a
// configured age. It deletes in small batches, each its own short statement with a pause between
// batches, and skips rows other sessions hold locked, so it never blocks capture or dispatch and
// never runs one long transaction. One replica at a time runs it, under a PostgreSQL advisory
// lock; the others skip their turn. Pending deliveries are never deleted.
package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/store"
)

// Config configures history retention.
type Config struct {
	// MaxAge is how long history is kept: finished deliveries, their attempts and unreferenced
	// events older than this are deleted. 0 disables retention. The command line's default is
	// 720h (30 days).
	MaxAge time.Duration
	// Interval is the time between two runs. Default 1h.
	Interval time.Duration
	// BatchSize is the number of rows one DELETE removes, each in its own short transaction.
	// Default 1000.
	BatchSize int
	// Pause is the wait between two batches, leaving room to other work. Default 100ms.
	Pause time.Duration
}

// Defaults for Config fields left zero (MaxAge excepted: zero disables retention).
const (
	DefaultMaxAge    = 30 * 24 * time.Hour
	DefaultInterval  = time.Hour
	DefaultBatchSize = 1000
	DefaultPause     = 100 * time.Millisecond
)

// Table names used as the table label of walhook_retention_deleted_total.
const (
	TableDelivery  = "delivery"
	TableEvent     = "event"
	TableLoginCode = "login_code"
)

// Retention is the retention runner.
type Retention struct {
	cfg   Config
	store *store.Store
	log   zerolog.Logger
	now   func() time.Time

	deleted *prometheus.CounterVec
	runs    *prometheus.CounterVec
	lastRun prometheus.Gauge
	runDur  prometheus.Histogram
}

// New builds the runner and registers its metrics on reg.
func New(cfg Config, st *store.Store, log zerolog.Logger, reg prometheus.Registerer) (*Retention, error) {
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("retention max age must not be negative, got %v", cfg.MaxAge)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Pause < 0 {
		cfg.Pause = 0
	} else if cfg.Pause == 0 {
		cfg.Pause = DefaultPause
	}
	r := &Retention{
		cfg: cfg, store: st, log: log.With().Str("part", "retention").Logger(), now: time.Now,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_retention_deleted_total",
			Help: "Rows deleted by history retention, by table (delivery counts deliveries; their attempts go with them).",
		}, []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_retention_runs_total",
			Help: "Retention runs by outcome: ok, error, or skipped (another replica held the lock).",
		}, []string{"outcome"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walhook_retention_last_run_timestamp_seconds",
			Help: "Unix time at which the last successful retention run on this replica finished.",
		}),
		runDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walhook_retention_run_duration_seconds",
			Help:    "Duration of retention runs that held the lock.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	for _, t := range []string{TableDelivery, TableEvent} {
		r.deleted.WithLabelValues(t)
	}
	for _, o := range []string{"ok", "error", "skipped"} {
		r.runs.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{r.deleted, r.runs, r.lastRun, r.runDur} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register retention metrics: %w", err)
		}
	}
	return r, nil
}

// Run runs retention now and then every Interval until ctx is cancelled; it returns nil then.
// A failed run is logged and retried at the next interval: old history is not worth stopping
// the relay for. With MaxAge 0 it only waits for ctx.
func (r *Retention) Run(ctx context.Context) error {
	if r.cfg.MaxAge == 0 {
		r.log.Info().Msg("history retention disabled")
		<-ctx.Done()
		return nil
	}
	r.log.Info().Dur("max_age", r.cfg.MaxAge).Dur("interval", r.cfg.Interval).Int("batch_size", r.cfg.BatchSize).Msg("history retention enabled")
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		res, err := r.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.log.Error().Err(err).Msg("history retention run failed; retrying at the next interval")
		case res.Skipped:
			r.log.Debug().Msg("history retention: another replica holds the lock")
		case res.Deliveries > 0 || res.Events > 0:
			r.log.Info().Int64("deliveries", res.Deliveries).Int64("events", res.Events).Msg("old history deleted")
		}
		t.Reset(r.cfg.Interval)
	}
}

// Result is what one run did.
type Result struct {
	// Skipped is true when another replica held the lock and nothing was done.
	Skipped bool
	// Deliveries and Events are the rows deleted; Batches the DELETE statements run.
	Deliveries, Events, LoginCodes int64
	Batches                        int
}

// RunOnce deletes everything older than MaxAge, batch by batch, if no other replica is doing so.
func (r *Retention) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	if r.cfg.MaxAge == 0 {
		return res, nil
	}
	release, ok, err := r.store.RetentionLock(ctx)
	if err != nil {
		r.runs.WithLabelValues("error").Inc()
		return res, fmt.Errorf("take retention lock: %w", err)
	}
	if !ok {
		r.runs.WithLabelValues("skipped").Inc()
		res.Skipped = true
		return res, nil
	}
	defer release()
	start := r.now()
	cutoff := start.Add(-r.cfg.MaxAge)
	steps := []struct {
		table string
		del   func(context.Context, time.Time, int) (int64, error)
		total *int64
	}{
		{TableDelivery, r.store.RetentionDeleteDeliveries, &res.Deliveries},
		{TableEvent, r.store.RetentionDeleteEvents, &res.Events},
		{TableLoginCode, r.store.RetentionDeleteLoginCodes, &res.LoginCodes},
	}
	for _, s := range steps {
		for {
			n, err := s.del(ctx, cutoff, r.cfg.BatchSize)
			if err != nil {
				r.runs.WithLabelValues("error").Inc()
				return res, fmt.Errorf("delete old %s rows: %w", s.table, err)
			}
			res.Batches++
			*s.total += n
			r.deleted.WithLabelValues(s.table).Add(float64(n))
			if n < int64(r.cfg.BatchSize) {
				break
			}
			if err := pause(ctx, r.cfg.Pause); err != nil {
				return res, err
			}
		}
	}
	r.runs.WithLabelValues("ok").Inc()
	r.lastRun.Set(float64(r.now().UnixNano()) / 1e9)
	r.runDur.Observe(r.now().Sub(start).Seconds())
	return res, nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("pause between batches: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
