// Package retention keeps the history (events, deliveries, attempts) to a configured age, in the
// background. The history is in weekly partitions by the event's time (migration 0029), so
// retention is mostly DDL:
//
//   - Partitions ahead: every run (and the relay at start) creates the partitions of the current
//     week and the next two, so new history lands in a week that can later be dropped whole,
//     and those of the weeks missed since the newest one that has them (an outage's, whose
//     backlog capture is about to store). This runs even with retention disabled (MaxAge 0).
//   - Weeks dropped whole: a week whose end is MaxAge old is dropped as three tables, its
//     pending deliveries (work still to do) moved with their events and attempts into the
//     default partitions. History is thus kept from MaxAge to MaxAge + 7 days.
//     A week with more than MoveLimit pending deliveries is kept instead (moving them would hold
//     those locks, and with them every claim and capture, for seconds to minutes): its finished
//     rows are deleted row by row, as the default partitions' are, until its pending deliveries
//     are few enough to move.
//   - Rows: the default partitions (times outside every week: a skewed clock, the moved pending
//     deliveries) are emptied as before, finished deliveries and then unreferenced events, in
//     small batches, each its own short statement with a pause between batches, skipping rows
//     other sessions hold locked. Pending deliveries are never deleted.
//
// Creating and dropping a week's partitions take the three tables' ACCESS EXCLUSIVE locks for an
// instant; retention waits for them at most store.PartitionLockTimeout, never while holding one
// of them (which would deadlock with claims and capture), and otherwise gives up until the next
// run, so a long query never queues capture and dispatch behind retention for long. One replica
// at a time runs it, under a PostgreSQL advisory lock; the others skip their turn (and only
// export the partition gauges).
package retention

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/internal/lograte"
	"github.com/walhook/walhook/relay/internal/metric"
	"github.com/walhook/walhook/relay/store"
)

// Config configures history retention.
type Config struct {
	// MaxAge is how long history is kept, by the event's time: a week of events, deliveries and
	// attempts is dropped once its end is MaxAge old (so history is kept MaxAge to MaxAge + 7
	// days), and rows of the default partitions older than this are deleted. Pending deliveries
	// are kept. 0 disables retention (partitions are still created ahead). The command line's
	// default is 720h (30 days).
	MaxAge time.Duration
	// Interval is the time between two runs. Default 1h.
	Interval time.Duration
	// BatchSize is the number of rows one DELETE of the default partitions removes, each in its
	// own short transaction. Default 1000.
	BatchSize int
	// Pause is the wait between two batches, leaving room to other work. Default 100ms.
	Pause time.Duration
	// MoveLimit is the most pending deliveries a week's drop moves into the default partitions,
	// and the most events (or deliveries) of a week a partition creation moves out of them.
	// They are moved while the drop holds the ACCESS EXCLUSIVE locks of event, delivery and
	// attempt, which stops every claim and capture meanwhile: about 3 s per 100,000 on the
	// 2-core test machine. A week past the retention age with more (a turned-off webhook's
	// queue, a long outage's retries) is kept, its finished rows deleted row by row, until it
	// has no more; a week ahead with more rows already captured (dated ahead: a source clock
	// ahead, an outbox row's created_at) gets no partitions, its rows staying in the default
	// partitions. Default 20,000 (well under a second there).
	MoveLimit int64
}

// Defaults for Config fields left zero (MaxAge excepted: zero disables retention).
const (
	DefaultMaxAge    = 30 * 24 * time.Hour
	DefaultInterval  = time.Hour
	DefaultBatchSize = 1000
	DefaultPause     = 100 * time.Millisecond
	DefaultMoveLimit = 20_000
)

// WeeksAhead is how many weeks have partitions from the current one on: this week and the next
// two, so that runs failing (or every relay stopped) for up to two weeks still leave new history
// in weeks that exist.
const WeeksAhead = 3

// MaxGap is how many weeks back from the current one a run creates the partitions missing since
// the newest week that has them (an outage's weeks, whose backlog capture is about to store).
const MaxGap = 8

// week is the span of one history partition.
const week = 7 * 24 * time.Hour

// Table names used as the table label of walhook_retention_deleted_total and
// walhook_history_partitions.
const (
	TableAttempt   = "attempt"
	TableDelivery  = "delivery"
	TableEvent     = "event"
	TableLoginCode = "login_code"
)

// partitioned are the history's partitioned tables.
var partitioned = []string{TableEvent, TableDelivery, TableAttempt}

// Retention is the retention runner.
type Retention struct {
	cfg   Config
	store *store.Store
	log   zerolog.Logger
	now   func() time.Time
	// busyLog rate-limits the log of a partition lock not granted (retried next run).
	busyLog lograte.Limiter
	// notCreatedLog rate-limits the log of a week ahead left without partitions.
	notCreatedLog lograte.Limiter

	deleted    *prometheus.CounterVec
	runs       *prometheus.CounterVec
	lastRun    prometheus.Gauge
	runDur     prometheus.Histogram
	dropped    prometheus.Counter
	busy       prometheus.Counter
	kept       prometheus.Gauge
	notCreated prometheus.Gauge
	partitions *prometheus.GaugeVec
	ahead      prometheus.GaugeFunc
	// newest is the end of the newest week all three tables have a partition for, as Unix
	// nanoseconds, last seen by observe; 0: not seen yet (the ahead gauge is NaN then), -1: a
	// table had none.
	newest atomic.Int64
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
	if cfg.MoveLimit <= 0 {
		cfg.MoveLimit = DefaultMoveLimit
	}
	if cfg.Pause < 0 {
		cfg.Pause = 0
	} else if cfg.Pause == 0 {
		cfg.Pause = DefaultPause
	}
	b := metric.NewBuilder(reg)
	r := &Retention{
		cfg: cfg, store: st, log: log.With().Str("part", "retention").Logger(), now: time.Now,
		deleted: b.CounterVec(metric.Opts{
			Name: "walhook_retention_deleted_total",
			Help: "Rows removed by history retention, by table (delivery counts deliveries; their attempts go with them). " +
				"Rows of a dropped week are counted by estimate (the planner's statistics), not counted one by one.",
		}, "table"),
		runs: b.CounterVec(metric.Opts{
			Name: "walhook_retention_runs_total",
			Help: "Retention runs by outcome: ok, error, or skipped (another replica held the lock).",
		}, "outcome"),
		lastRun: b.Gauge(metric.Opts{
			Name: "walhook_retention_last_run_timestamp_seconds",
			Help: "Unix time at which the last successful retention run on this replica finished.",
		}),
		runDur: b.Histogram(metric.Opts{
			Name: "walhook_retention_run_duration_seconds",
			Help: "Duration of retention runs that held the lock.",
		}, prometheus.ExponentialBuckets(0.01, 4, 10)),
		dropped: b.Counter(metric.Opts{
			Name: "walhook_retention_partitions_dropped_total",
			Help: "Weeks of history (event, delivery and attempt partitions) dropped whole by retention.",
		}),
		busy: b.Counter(metric.Opts{
			Name: "walhook_retention_lock_timeouts_total",
			Help: "History partition creations and week drops given up because a table lock was not granted within 5s; retried at the next run.",
		}),
		kept: b.Gauge(metric.Opts{
			Name: "walhook_retention_weeks_kept",
			Help: "Weeks past the retention age the last run kept rather than dropped: more pending deliveries than it moves under the history's locks (their finished rows are deleted row by row).",
		}),
		notCreated: b.Gauge(metric.Opts{
			Name: "walhook_retention_weeks_not_created",
			Help: "Weeks ahead the last creation of partitions left without them: the default partitions held more of their rows (dated ahead) than it moves under the history's locks.",
		}),
		partitions: b.GaugeVec(metric.Opts{
			Name: "walhook_history_partitions",
			Help: "Weekly partitions of the history, by table (event, delivery, attempt), as the replica running retention last saw them.",
		}, "table"),
	}
	// Computed when scraped, so that it shrinks between runs and on a replica whose retention
	// stopped: an alert on the maximum over replicas then sees the truth.
	r.ahead = b.GaugeFunc(metric.Opts{
		Name: "walhook_history_partitions_ahead_seconds",
		Help: "End of the newest week that event, delivery and attempt all have a partition for, minus now (0 when one has none; NaN before the first look). " +
			"History past it lands in the default partitions, removed row by row.",
	}, r.aheadSeconds)
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("register retention metrics: %w", err)
	}
	metric.Preset(r.deleted, TableDelivery, TableEvent, TableLoginCode)
	metric.Preset(r.runs, "ok", "error", "skipped")
	return r, nil
}

// Run runs retention now and then every Interval until ctx is cancelled; it returns nil then.
// A failed run is logged and retried at the next interval: old history is not worth stopping
// the relay for. With MaxAge 0 the runs only create partitions ahead.
func (r *Retention) Run(ctx context.Context) error {
	if r.cfg.MaxAge == 0 {
		r.log.Info().Dur("interval", r.cfg.Interval).Msg("history retention disabled; history partitions are still created ahead")
	} else {
		r.log.Info().Dur("max_age", r.cfg.MaxAge).Dur("interval", r.cfg.Interval).Int("batch_size", r.cfg.BatchSize).Msg("history retention enabled")
	}
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
		case res.Weeks > 0 || res.Deliveries > 0 || res.Events > 0:
			r.log.Info().Int("weeks", res.Weeks).Int64("pending_moved", res.PendingMoved).
				Int64("deliveries", res.Deliveries).Int64("events", res.Events).Msg("old history deleted")
		}
		if res.PartitionsCreated > 0 {
			r.log.Info().Int("partitions", res.PartitionsCreated).Msg("history partitions created ahead")
		}
		t.Reset(r.cfg.Interval)
	}
}

// Result is what one run did.
type Result struct {
	// Skipped is true when another replica held the lock and nothing was done.
	Skipped bool
	// Busy is true when a partition creation or a week drop gave up, its lock not granted
	// within store.PartitionLockTimeout; the next run tries again.
	Busy bool
	// PartitionsCreated is the partitions created ahead (three a week).
	PartitionsCreated int
	// WeeksNotCreated is the weeks left without partitions (ahead, or missed since the newest):
	// more than Config.MoveLimit of their rows were in the default partitions already.
	WeeksNotCreated []time.Time
	// Weeks is the weeks dropped; PendingMoved their pending deliveries moved into the default
	// partition; WeekDeliveries and WeekEvents estimate the rows dropped with them.
	Weeks                      int
	PendingMoved               int64
	WeekDeliveries, WeekEvents int64
	// WeeksKept is the weeks past the retention age not dropped: more than Config.MoveLimit
	// pending deliveries. Their finished deliveries and unreferenced events were deleted row by
	// row (counted in Deliveries and Events).
	WeeksKept int
	// Deliveries, Events and LoginCodes are the rows deleted one by one (the default
	// partitions, expired sign-in codes); Batches the DELETE statements run.
	Deliveries, Events, LoginCodes int64
	Batches                        int
}

// RunOnce, if no other replica is doing so, creates the partitions ahead, then (with MaxAge set)
// drops the weeks older than MaxAge and deletes the default partitions' rows older than MaxAge,
// batch by batch, and expired sign-in codes. A lock not granted is no failure: the run goes on
// without that step (Result.Busy).
func (r *Retention) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	release, ok, err := r.store.RetentionLock(ctx)
	if err != nil {
		r.runs.WithLabelValues("error").Inc()
		return res, fmt.Errorf("take retention lock: %w", err)
	}
	if !ok {
		r.runs.WithLabelValues("skipped").Inc()
		res.Skipped = true
		if _, err := r.observe(ctx); err != nil {
			return res, err
		}
		return res, nil
	}
	defer release()
	start := r.now()
	if err := r.run(ctx, start, &res); err != nil {
		r.runs.WithLabelValues("error").Inc()
		return res, err
	}
	r.runs.WithLabelValues("ok").Inc()
	r.lastRun.Set(float64(r.now().UnixNano()) / 1e9)
	r.runDur.Observe(r.now().Sub(start).Seconds())
	return res, nil
}

// run is RunOnce's work, under the lock.
func (r *Retention) run(ctx context.Context, start time.Time, res *Result) error {
	created, skipped, err := r.createAhead(ctx, start)
	res.PartitionsCreated, res.WeeksNotCreated = created, skipped
	// A creation that failed does not stop the expiry of old history (the disk fills otherwise):
	// its error is returned once the rest of the run is done.
	var createErr error
	if err = r.giveUp(err, res); err != nil {
		createErr = fmt.Errorf("create history partitions ahead: %w", err)
	}
	parts, err := r.observe(ctx)
	if err != nil {
		return errors.Join(createErr, err)
	}
	if r.cfg.MaxAge == 0 {
		return createErr
	}
	if err := r.expire(ctx, start, parts, res); err != nil {
		return errors.Join(createErr, err)
	}
	return createErr
}

// expire drops the weeks older than MaxAge and deletes the default partitions' old rows and
// expired sign-in codes.
func (r *Retention) expire(ctx context.Context, start time.Time, parts []store.HistoryPartition, res *Result) error {
	cutoff := start.Add(-r.cfg.MaxAge)
	if err := r.dropWeeks(ctx, parts, cutoff, res); err != nil {
		return err
	}
	if res.Weeks > 0 {
		if _, err := r.observe(ctx); err != nil {
			return err
		}
	}
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
		if err := r.batches(ctx, s.table, s.total, res, func(ctx context.Context, n int) (int64, error) {
			return s.del(ctx, cutoff, n)
		}); err != nil {
			return err
		}
	}
	return nil
}

// dropWeeks drops, oldest first, every week of parts whose end is at or before cutoff. A week
// whose locks are not granted ends the drops of this run; the next run starts with it. A week
// with more than MoveLimit pending deliveries is kept: its finished rows are deleted row by row.
func (r *Retention) dropWeeks(ctx context.Context, parts []store.HistoryPartition, cutoff time.Time, res *Result) error {
	var weeks []time.Time
	for _, p := range parts { // by week
		if !p.Week.Add(week).After(cutoff) && (len(weeks) == 0 || !weeks[len(weeks)-1].Equal(p.Week)) {
			weeks = append(weeks, p.Week)
		}
	}
	defer func() { r.kept.Set(float64(res.WeeksKept)) }()
	for _, w := range weeks {
		pending, err := r.store.RetentionWeekPending(ctx, w)
		if err != nil {
			return fmt.Errorf("count the pending deliveries of the week of %s: %w", w.Format(time.DateOnly), err)
		}
		if pending > r.cfg.MoveLimit {
			res.WeeksKept++
			r.log.Warn().Time("week", w).Int64("pending", pending).Int64("move_limit", r.cfg.MoveLimit).
				Msg("history week kept: too many pending deliveries to move under the history's locks; deleting its finished rows one by one")
			if err := r.weekBatches(ctx, w, TableDelivery, &res.Deliveries, res, r.store.RetentionDeleteWeekDeliveries); err != nil {
				return err
			}
			if err := r.weekBatches(ctx, w, TableEvent, &res.Events, res, r.store.RetentionDeleteWeekEvents); err != nil {
				return err
			}
			continue
		}
		d, err := r.store.RetentionWeekDrop(ctx, w)
		if errors.Is(err, store.ErrLockTimeout) {
			return r.giveUp(err, res)
		}
		if err != nil {
			return err
		}
		res.Weeks++
		res.PendingMoved += d.Pending
		res.WeekDeliveries += d.Rows[TableDelivery]
		res.WeekEvents += d.Rows[TableEvent]
		r.dropped.Inc()
		r.deleted.WithLabelValues(TableDelivery).Add(float64(d.Rows[TableDelivery]))
		r.deleted.WithLabelValues(TableEvent).Add(float64(d.Rows[TableEvent]))
		r.log.Info().Time("week", w).Int64("pending_moved", d.Pending).Int64("deliveries_estimate", d.Rows[TableDelivery]).
			Int64("events_estimate", d.Rows[TableEvent]).Msg("history week dropped")
	}
	return nil
}

// weekBatches runs del over a kept week, batch after batch by id, until a batch reaches the
// week's end, pausing between batches, and counts what it deleted.
func (r *Retention) weekBatches(ctx context.Context, w time.Time, table string, total *int64, res *Result,
	del func(context.Context, time.Time, int64, int) (store.WeekBatch, error)) error {
	var after int64
	for {
		b, err := del(ctx, w, after, r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("delete old %s rows of the week of %s: %w", table, w.Format(time.DateOnly), err)
		}
		res.Batches++
		*total += b.Deleted
		r.deleted.WithLabelValues(table).Add(float64(b.Deleted))
		if b.Scanned < int64(r.cfg.BatchSize) {
			return nil
		}
		after = b.LastID
		if err := pause(ctx, r.cfg.Pause); err != nil {
			return err
		}
	}
}

// batches runs del (a DELETE of at most BatchSize rows) until a batch deletes fewer, pausing
// between batches, and counts what it deleted in total and walhook_retention_deleted_total.
func (r *Retention) batches(ctx context.Context, table string, total *int64, res *Result, del func(context.Context, int) (int64, error)) error {
	for {
		n, err := del(ctx, r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("delete old %s rows: %w", table, err)
		}
		res.Batches++
		*total += n
		r.deleted.WithLabelValues(table).Add(float64(n))
		if n < int64(r.cfg.BatchSize) {
			return nil
		}
		if err := pause(ctx, r.cfg.Pause); err != nil {
			return err
		}
	}
}

// giveUp turns a lock not granted (store.ErrLockTimeout) into Result.Busy: counted, logged at
// most once per lograte interval, and no error. Other errors are returned.
func (r *Retention) giveUp(err error, res *Result) error {
	if !errors.Is(err, store.ErrLockTimeout) {
		return err
	}
	res.Busy = true
	r.busy.Inc()
	r.busyLog.Msg(r.log.Warn().Err(err), "history partitions: a table lock was not granted in time; retrying at the next run")
	return nil
}

// aheadSeconds is the value of walhook_history_partitions_ahead_seconds.
func (r *Retention) aheadSeconds() float64 {
	switch n := r.newest.Load(); n {
	case 0:
		return math.NaN()
	case -1:
		return 0
	default:
		return time.Unix(0, n).Sub(r.now()).Seconds()
	}
}

// observe lists the weekly partitions and sets the partition gauges from them. It needs no lock:
// every replica runs it, so that every one exports what the database has.
func (r *Retention) observe(ctx context.Context) ([]store.HistoryPartition, error) {
	parts, err := r.store.RetentionPartitionList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list history partitions: %w", err)
	}
	count := make(map[string]int, len(partitioned))
	newest := make(map[string]time.Time, len(partitioned))
	for _, p := range parts {
		count[p.Table]++
		if end := p.Week.Add(week); end.After(newest[p.Table]) {
			newest[p.Table] = end
		}
	}
	// The newest week all three have ends at the earliest of their newest weeks' ends.
	all, none := time.Time{}, false
	for _, t := range partitioned {
		r.partitions.WithLabelValues(t).Set(float64(count[t]))
		none = none || count[t] == 0
		if all.IsZero() || newest[t].Before(all) {
			all = newest[t]
		}
	}
	if none {
		r.newest.Store(-1)
	} else {
		r.newest.Store(all.UnixNano())
	}
	return parts, nil
}

// EnsurePartitions creates the partitions ahead now (the current week and the next two), for a
// relay about to start capture, and sets the partition gauges. When another replica holds the
// retention lock, that replica is creating them: then it only sets the gauges.
func (r *Retention) EnsurePartitions(ctx context.Context) error {
	release, ok, err := r.store.RetentionLock(ctx)
	if err != nil {
		return fmt.Errorf("take retention lock: %w", err)
	}
	if ok {
		_, _, err = r.createAhead(ctx, r.now())
		release()
		if err != nil {
			return fmt.Errorf("create history partitions ahead: %w", err)
		}
	}
	_, err = r.observe(ctx)
	return err
}

// createAhead creates the partitions of the week of now and the next ones (WeeksAhead), and
// those of the weeks before it back to the newest week that has them (MaxGap at most, and none
// whose end is already MaxAge old): after an outage of more than WeeksAhead weeks (every relay
// stopped, retention failing) capture resumes with the backlog of the weeks in between, which
// would otherwise all land in the default partitions, to be deleted row by row and scanned at
// every later creation under the history's locks. It reports the weeks it left without
// partitions for their rows already in the default partitions (more than MoveLimit: the move
// would hold the history's locks too long).
func (r *Retention) createAhead(ctx context.Context, now time.Time) (int, []time.Time, error) {
	from := store.HistoryWeek(now)
	parts, err := r.store.RetentionPartitionList(ctx)
	if err != nil {
		return 0, nil, err
	}
	tables := map[time.Time]int{}
	for _, p := range parts {
		tables[p.Week]++
	}
	var newest time.Time
	for w, n := range tables {
		if n == len(partitioned) && w.Before(from) && w.After(newest) {
			newest = w
		}
	}
	if !newest.IsZero() {
		oldest := from.AddDate(0, 0, -7*MaxGap)
		if r.cfg.MaxAge > 0 {
			// The first week whose end is not yet MaxAge old.
			if w := store.HistoryWeek(now.Add(-r.cfg.MaxAge)); w.After(oldest) {
				oldest = w
			}
		}
		for w := newest.AddDate(0, 0, 7); w.Before(from); w = w.AddDate(0, 0, 7) {
			if !w.Before(oldest) {
				from = w
				break
			}
		}
	}
	weeks := WeeksAhead + int(store.HistoryWeek(now).Sub(from)/week)
	created, skipped, err := r.store.RetentionPartitionsCreate(ctx, from, weeks, r.cfg.MoveLimit)
	r.notCreated.Set(float64(len(skipped)))
	if len(skipped) > 0 {
		r.notCreatedLog.Msg(r.log.Warn().Times("weeks", skipped).Int64("move_limit", r.cfg.MoveLimit),
			"history weeks left without partitions: more of their rows in the default partitions than a creation moves under the history's locks")
	}
	return created, skipped, err
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
