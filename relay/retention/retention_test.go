package retention_test

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/retention"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// seeded is a new test database (xtest.Store) with a company, a catalog entry and a webhook: its
// store, its pool and the webhook's id.
func seeded(t *testing.T) (*store.Store, *pgxpool.Pool, int64) {
	t.Helper()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	_, err := pool.Exec(ctx, `INSERT INTO walhook.company (id, name) VALUES ('1', 'Acme')`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO walhook.event_type (key, source) VALUES ('contact.created', 'outbox')`)
	require.NoError(t, err)
	var id int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO walhook.webhook (company_id, name, url, method, event_keys, signing_secret_enc)
		VALUES ('1', 'w', 'https://example.com/hook', 'POST', '{contact.created}', '\x00') RETURNING id`).Scan(&id))
	return st, pool, id
}

// addHistory inserts n events captured age ago, each with one delivery in state (created and
// updated age ago) and two attempts. prefix keeps source keys unique.
func addHistory(t *testing.T, pool *pgxpool.Pool, webhookID int64, prefix string, n int, age time.Duration, state string) []int64 {
	t.Helper()
	at := time.Now().Add(-age)
	return addHistoryAt(t, pool, webhookID, prefix, n, at, at, state)
}

// addHistoryAt inserts n events that occurred at occurred and were captured at captured, each
// with one delivery in state (created and updated at captured) and two attempts, and returns the
// deliveries' ids. The rows land in the partitions of occurred's week, or in the default
// partitions when that week has none.
func addHistoryAt(t *testing.T, pool *pgxpool.Pool, webhookID int64, prefix string, n int, occurred, captured time.Time, state string) []int64 {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
WITH e AS (
  INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at, captured_at)
  SELECT $1 || g, '1', 'contact.created', '{}', $2, $6 FROM generate_series(1, $3::int) g
  RETURNING id, occurred_at
), d AS (
  INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, created_at, updated_at, next_attempt_at)
  SELECT '1', $4, e.id, e.occurred_at, 'contact.created', $5, $6, $6, $6 FROM e
  RETURNING id, event_at
), a AS (
  INSERT INTO walhook.attempt (delivery_id, event_at, company_id, webhook_id, n, started_at, request_method, request_url, outcome)
  SELECT d.id, d.event_at, '1', $4, k, $6, 'POST', 'https://example.com/hook', 'retry' FROM d, generate_series(1, 2) k
)
SELECT id FROM d ORDER BY id`,
		prefix, occurred, n, webhookID, state, captured)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Len(t, ids, n)
	return ids
}

// addOrphanEvents inserts n events captured age ago that no webhook wanted.
func addOrphanEvents(t *testing.T, pool *pgxpool.Pool, prefix string, n int, age time.Duration) {
	t.Helper()
	_, err := pool.Exec(t.Context(), `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at, captured_at)
		SELECT $1 || g, '1', 'contact.created', '{}', $2, $2 FROM generate_series(1, $3::int) g`, prefix, time.Now().Add(-age), n)
	require.NoError(t, err)
}

const (
	day = 24 * time.Hour
	// maxAge is the retention age of the tests that drop a week.
	maxAge = 30 * day
)

// oldWeek is a test database with a webhook (seeded) and the partitions of the week six weeks
// back: a week retention drops at maxAge once its end is that old (expiry), and not before.
type oldWeek struct {
	st     *store.Store
	pool   *pgxpool.Pool
	wh     int64
	monday time.Time // the week's first instant
	suffix string    // its partitions' suffix: walhook.delivery_p<suffix>
}

func newOldWeek(t *testing.T) oldWeek {
	t.Helper()
	st, pool, wh := seeded(t)
	w := oldWeek{st: st, pool: pool, wh: wh}
	w.monday, w.suffix = weekFromNow(-6)
	createWeek(t, pool, w.monday)
	return w
}

// weekFromNow is the first instant of the history week n weeks from this one, and the suffix of
// that week's partitions (walhook.delivery_p<suffix>).
func weekFromNow(n int) (monday time.Time, suffix string) {
	monday = store.HistoryWeek(time.Now()).AddDate(0, 0, 7*n)
	return monday, monday.Format("20060102")
}

// expiry is the first instant at which the week's end is maxAge old: a run then drops it.
func (w oldWeek) expiry() time.Time { return w.monday.AddDate(0, 0, 7).Add(maxAge) }

// createWeek creates the history partitions of the week of at, as retention does ahead.
func createWeek(t *testing.T, pool *pgxpool.Pool, at time.Time) {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT walhook.history_partition_create($1)`, at).Scan(&n))
	require.Equal(t, 3, n, "the week of %v had no partitions yet", at)
}

// exists reports whether walhook.<name> is a table.
func exists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT to_regclass('walhook.' || $1) IS NOT NULL`, name).Scan(&ok))
	return ok
}

// inShortLockTx runs fn in a transaction of pool whose lock_timeout is 2 s, and commits it: a
// statement that waits longer for a lock fails, so that a lock held too long shows as an error.
func inShortLockTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func count(t *testing.T, pool *pgxpool.Pool, query string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), query).Scan(&n))
	return n
}

func TestRetentionDeletesOnlyOldFinishedHistoryInBatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	addHistory(t, pool, wh, "old-ok-", 25, 40*day, "succeeded")
	addHistory(t, pool, wh, "old-failed-", 5, 40*day, "failed")
	addHistory(t, pool, wh, "old-pending-", 3, 40*day, "pending") // still work to do: kept
	addHistory(t, pool, wh, "new-ok-", 10, 2*day, "succeeded")
	addOrphanEvents(t, pool, "old-orphan-", 4, 40*day)
	addOrphanEvents(t, pool, "new-orphan-", 2, 2*day)
	// Dated 1999 (a source server's clock): in the default partitions, deleted by the age of the
	// delivery and of the capture, not by the event's date.
	y1999 := time.Date(1999, 6, 1, 12, 0, 0, 0, time.UTC)
	addHistoryAt(t, pool, wh, "1999-old-", 2, y1999, time.Now().Add(-40*day), "succeeded")
	addHistoryAt(t, pool, wh, "1999-new-", 1, y1999, time.Now().Add(-2*day), "succeeded")
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM walhook.event_pdefault WHERE occurred_at = '1999-06-01 12:00Z'`))
	// Sign-in codes: two expired long ago (deleted), one still valid (kept).
	owner, err := st.MemberCreate(ctx, store.Member{CompanyID: "1", Email: "owner@acme.test", IsOwner: true})
	require.NoError(t, err)
	for _, ttl := range []time.Duration{-40 * day, -31 * day, time.Hour} {
		_, err := st.LoginCodeCreate(ctx, "1", owner.ID, ttl)
		require.NoError(t, err)
	}

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: 30 * day, BatchSize: 7, Pause: time.Millisecond}, st, zerolog.Nop(), reg)
	require.NoError(t, err)
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Skipped)
	require.Zero(t, res.Weeks, "no week with partitions is 30 days old")
	require.EqualValues(t, 32, res.Deliveries, "the 30 old finished deliveries and the 2 old ones of 1999")
	require.EqualValues(t, 36, res.Events, "their 32 events and the 4 old unreferenced ones")
	require.EqualValues(t, 2, res.LoginCodes, "the two sign-in codes expired before the cutoff")
	// 32 deliveries in batches of 7: 5 statements (7,7,7,7,4); 36 events: 6 (7,7,7,7,7,1); 1 for codes.
	require.Equal(t, 12, res.Batches, "deleted in batches of at most 7 rows")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.login_code`))

	require.Equal(t, 14, count(t, pool, `SELECT count(*) FROM walhook.delivery`), "3 old pending + 10 new + 1 of 1999 captured lately")
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM walhook.delivery WHERE state = 'pending'`))
	require.Equal(t, 28, count(t, pool, `SELECT count(*) FROM walhook.attempt`), "attempts of the kept deliveries only")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.attempt a WHERE NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.id = a.delivery_id)`))
	require.Equal(t, 16, count(t, pool, `SELECT count(*) FROM walhook.event`), "3 old with pending deliveries + 10 new + 2 new orphans + 1 of 1999")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'old-ok-%' OR source_key LIKE 'old-orphan-%' OR source_key LIKE '1999-old-%'`))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.event_pdefault WHERE source_key LIKE '1999-new-%'`))

	require.InDelta(t, 32, xtest.Sample(t, reg, "walhook_retention_deleted_total", retention.TableDelivery), 0)
	require.InDelta(t, 36, xtest.Sample(t, reg, "walhook_retention_deleted_total", retention.TableEvent), 0)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_runs_total", "ok"), 0)
	require.Positive(t, xtest.Sample(t, reg, "walhook_retention_last_run_timestamp_seconds"))

	// A second run finds nothing more to delete.
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Deliveries+res.Events)
}

func TestRetentionOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	addHistory(t, pool, wh, "old-", 5, 40*24*time.Hour, "succeeded")

	release, ok, err := st.RetentionLock(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: 24 * time.Hour}, st, zerolog.Nop(), reg)
	require.NoError(t, err)
	require.True(t, math.IsNaN(xtest.Sample(t, reg, "walhook_history_partitions_ahead_seconds")), "not looked yet")
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, res.Skipped, "another session holds the lock")
	require.Equal(t, 5, count(t, pool, `SELECT count(*) FROM walhook.delivery`))
	// A replica that skips still exports what the database has (the migration made this week
	// and the next two).
	require.InDelta(t, 3, xtest.Sample(t, reg, "walhook_history_partitions", retention.TableDelivery), 0)
	require.Greater(t, xtest.Sample(t, reg, "walhook_history_partitions_ahead_seconds"), (14 * 24 * time.Hour).Seconds())

	release()
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Skipped)
	require.EqualValues(t, 5, res.Deliveries)
}

func TestRetentionDisabled(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	addHistory(t, pool, wh, "old-", 3, 400*24*time.Hour, "succeeded")
	r, err := retention.New(retention.Config{MaxAge: 0}, st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Batches)
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM walhook.delivery`))

	// Run returns when its context ends.
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, r.Run(rctx))
}

// TestRetentionDoesNotBlockCaptureOrDispatch drops an old week and deletes a large old history of
// the default partitions in small batches while other sessions keep inserting events and
// deliveries (what capture does) and claiming due deliveries with FOR UPDATE SKIP LOCKED (what
// dispatch does), with a short lock_timeout: had retention held a lock they needed for longer
// than an instant, their statements would fail.
func TestRetentionDoesNotBlockCaptureOrDispatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	// 6,000 rows of 1999 (a skewed clock) captured 90 days ago, in the default partitions, and a
	// week of 3,000 in partitions of their own.
	addHistoryAt(t, pool, wh, "old-", 6000, time.Date(1999, 3, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(-90*day), "succeeded")
	monday := store.HistoryWeek(time.Now()).AddDate(0, 0, -63)
	createWeek(t, pool, monday)
	addHistoryAt(t, pool, wh, "old-week-", 3000, monday.Add(day), monday.Add(day), "succeeded")

	r, err := retention.New(retention.Config{MaxAge: 30 * 24 * time.Hour, BatchSize: 200, Pause: 5 * time.Millisecond},
		st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)

	var done atomic.Bool
	var inserted, claimed atomic.Int64
	errs := make(chan error, 2)
	rounds := make(chan struct{}, 1) // a signal after each committed insert
	var wg sync.WaitGroup
	worker := func(op func(ctx context.Context, i int) error) {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			if err := op(ctx, i); err != nil {
				errs <- err
				return
			}
		}
	}
	wg.Add(2)
	go worker(func(ctx context.Context, i int) error { // capture: a new event and its delivery
		if err := inShortLockTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `WITH e AS (INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
				VALUES ('live-' || $1::int, '1', 'contact.created', '{}', now()) RETURNING id, occurred_at)
				INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key)
				SELECT '1', $2, id, occurred_at, 'contact.created' FROM e`, i, wh)
			return err
		}); err != nil {
			return err
		}
		inserted.Add(1)
		select {
		case rounds <- struct{}{}:
		default:
		}
		return nil
	})
	go worker(func(ctx context.Context, _ int) error { // dispatch: claim, then finish, a due delivery
		return inShortLockTx(ctx, pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE walhook.delivery SET state = 'succeeded', attempts = attempts + 1, updated_at = now()
				WHERE id IN (SELECT id FROM walhook.delivery WHERE state = 'pending' AND next_attempt_at <= now()
				ORDER BY next_attempt_at LIMIT 5 FOR UPDATE SKIP LOCKED)`)
			claimed.Add(tag.RowsAffected())
			return err
		})
	})

	res, err := r.RunOnce(ctx)
	// Let the workers do at least one more round after retention is done, then stop them.
	select {
	case <-rounds: // a round that may have begun before retention was done
	default:
	}
	select {
	case <-rounds:
	case err := <-errs:
		errs <- err // checked below with the other's
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		require.NoError(t, e, "concurrent capture/dispatch work failed while retention ran")
	}
	require.NoError(t, err)
	require.EqualValues(t, 6000, res.Deliveries)
	require.EqualValues(t, 6000, res.Events)
	require.Equal(t, 1, res.Weeks)
	require.GreaterOrEqual(t, res.Batches, 60, "6,000 rows per table in batches of 200")
	require.Positive(t, inserted.Load(), "capture kept inserting while retention ran")
	live := count(t, pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'live-%'`)
	require.EqualValues(t, inserted.Load(), live, "every live event is still there")
	require.Equal(t, live, count(t, pool, `SELECT count(*) FROM walhook.delivery`), "every live delivery is still there")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'old-%'`))
}

// TestRetentionDropsOldWeeksWhole puts history in the partitions of a week six weeks back and
// moves retention's clock to the instant that week's end is MaxAge old: one second earlier the
// week is kept, at that instant it is dropped as tables. Its pending deliveries (work still to
// do) survive in the default partitions with their events and attempts, ids unchanged, and can
// still be claimed.
func TestRetentionDropsOldWeeksWhole(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	wk := newOldWeek(t)
	inWeek := wk.monday.Add(3*day + 5*time.Hour)
	addHistoryAt(t, wk.pool, wk.wh, "week-ok-", 20, inWeek, inWeek, "succeeded")
	addHistoryAt(t, wk.pool, wk.wh, "week-failed-", 4, inWeek, inWeek, "failed")
	pending := addHistoryAt(t, wk.pool, wk.wh, "week-pending-", 3, inWeek, inWeek, "pending")
	addOrphanEvents(t, wk.pool, "new-", 2, time.Hour)
	require.Equal(t, 27, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery_p`+wk.suffix))
	// The planner's statistics are what a drop counts by.
	_, err := wk.pool.Exec(ctx, `ANALYZE walhook.event_p`+wk.suffix+`, walhook.delivery_p`+wk.suffix+`, walhook.attempt_p`+wk.suffix)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: maxAge, BatchSize: 5, Pause: time.Millisecond}, wk.st, zerolog.Nop(), reg)
	require.NoError(t, err)
	retention.SetNow(r, func() time.Time { return wk.expiry().Add(-time.Second) })
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Weeks, "the week's end is not yet MaxAge old")
	require.True(t, exists(t, wk.pool, "delivery_p"+wk.suffix))

	retention.SetNow(r, wk.expiry)
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Busy)
	require.Equal(t, 1, res.Weeks)
	require.EqualValues(t, 3, res.PendingMoved)
	require.EqualValues(t, 24, res.WeekDeliveries, "27 deliveries less the 3 pending moved (estimate, exact after ANALYZE)")
	require.EqualValues(t, 24, res.WeekEvents, "27 events less the 3 of pending deliveries")
	for _, tbl := range []string{"event", "delivery", "attempt"} {
		require.False(t, exists(t, wk.pool, tbl+"_p"+wk.suffix), "%s_p%s dropped", tbl, wk.suffix)
	}
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_partitions_dropped_total"), 0)
	require.InDelta(t, 24, xtest.Sample(t, reg, "walhook_retention_deleted_total", retention.TableDelivery), 0)
	require.InDelta(t, 24, xtest.Sample(t, reg, "walhook_retention_deleted_total", retention.TableEvent), 0)

	// What is left of the week: its pending deliveries, their events and attempts, in the default
	// partitions with the same ids and times.
	require.Equal(t, 0, count(t, wk.pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'week-ok-%' OR source_key LIKE 'week-failed-%'`))
	require.Equal(t, 3, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery`))
	require.Equal(t, 3, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery_pdefault WHERE state = 'pending' AND event_at = '`+inWeek.Format(time.RFC3339)+`'`))
	require.Equal(t, 3, count(t, wk.pool, `SELECT count(*) FROM walhook.event_pdefault e JOIN walhook.delivery_pdefault d ON d.event_id = e.id AND d.event_at = e.occurred_at WHERE e.source_key LIKE 'week-pending-%'`))
	require.Equal(t, 6, count(t, wk.pool, `SELECT count(*) FROM walhook.attempt_pdefault a JOIN walhook.delivery_pdefault d ON d.id = a.delivery_id AND d.event_at = a.event_at`))
	require.Equal(t, 6, count(t, wk.pool, `SELECT count(*) FROM walhook.attempt`))

	// A dispatcher still finds them: a claim leases them, by the same ids.
	claimed, err := wk.st.DispatchClaim(ctx, store.ClaimParams{Limit: 10, PerWebhook: 10, Lease: time.Minute, Token: "test"})
	require.NoError(t, err)
	var ids []int64
	for _, c := range claimed {
		ids = append(ids, c.ID)
		require.NotEmpty(t, c.Payload, "the claim joined the moved event")
	}
	require.ElementsMatch(t, pending, ids)

	// Nothing older is left to drop; the default partitions keep the pending rows.
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Weeks)
	require.Zero(t, res.Deliveries)
	require.Equal(t, 3, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery`))
}

// TestRetentionCreatesPartitionsAhead moves retention's clock five weeks ahead: a run creates the
// partitions of that week and the next two (also with retention disabled), and of the two weeks
// missed since the newest (an outage), moving an event already captured for one of them out of
// the default partition, and a second run creates nothing. The gauges say how many there are
// and how far ahead they reach.
func TestRetentionCreatesPartitionsAhead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	monday, suffix := weekFromNow(5)
	require.False(t, exists(t, pool, "event_p"+suffix))
	// Captured before its week had partitions (a clock ahead): in the default partitions.
	future := addHistoryAt(t, pool, wh, "ahead-", 1, monday.Add(time.Hour), time.Now(), "pending")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.delivery_pdefault`))
	before := count(t, pool, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'walhook.event'::regclass AND inhrelid <> 'walhook.event_pdefault'::regclass`)

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: 0}, st, zerolog.Nop(), reg)
	require.NoError(t, err)
	now := monday.Add(2 * 24 * time.Hour)
	retention.SetNow(r, func() time.Time { return now })
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 15, res.PartitionsCreated, "five weeks of three tables: the two missed and three from now")
	require.Zero(t, res.Batches, "retention disabled: nothing deleted")
	for w := -2; w < 3; w++ {
		for _, tbl := range []string{"event", "delivery", "attempt"} {
			require.True(t, exists(t, pool, tbl+"_p"+monday.AddDate(0, 0, 7*w).Format("20060102")))
		}
	}
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.delivery_pdefault`), "moved into its week")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.delivery_p`+suffix+` WHERE id = `+strconv.FormatInt(future[0], 10)))
	require.Equal(t, 2, count(t, pool, `SELECT count(*) FROM walhook.attempt_p`+suffix))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.event_p`+suffix))

	require.InDelta(t, before+5, xtest.Sample(t, reg, "walhook_history_partitions", "event"), 0)
	require.InDelta(t, before+5, xtest.Sample(t, reg, "walhook_history_partitions", "attempt"), 0)
	// The newest week ends three weeks after this one's Monday: 19 days after now.
	require.InDelta(t, (19 * 24 * time.Hour).Seconds(), xtest.Sample(t, reg, "walhook_history_partitions_ahead_seconds"), 0)

	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.PartitionsCreated, "idempotent")
	require.InDelta(t, 2, xtest.Sample(t, reg, "walhook_retention_runs_total", "ok"), 0)

	// The relay's start-up call does the same, and nothing more.
	require.NoError(t, r.EnsurePartitions(ctx))
	require.InDelta(t, before+5, xtest.Sample(t, reg, "walhook_history_partitions", "delivery"), 0)
}

// TestRetentionWeekDropGivesUpOnLock holds a lock that conflicts with DROP TABLE (ACCESS SHARE,
// what any open transaction that read the table holds) on walhook.delivery: the drop, which took
// event's lock first, lets it go to wait for delivery's, waits no longer than its lock_timeout,
// gives up without an error and changes nothing; the rest of the run goes on, and the next run,
// the lock gone, drops the week.
func TestRetentionWeekDropGivesUpOnLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	monday, suffix := weekFromNow(-9)
	createWeek(t, pool, monday)
	for w := store.HistoryWeek(time.Now().Add(-30 * day)); w.Before(store.HistoryWeek(time.Now())); w = w.AddDate(0, 0, 7) {
		createWeek(t, pool, w) // the weeks kept since, as retention created them
	}
	addHistoryAt(t, pool, wh, "week-", 5, monday.Add(day), monday.Add(day), "succeeded")
	addHistoryAt(t, pool, wh, "default-", 2, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(-40*day), "succeeded")

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.WithoutCancel(ctx)) }()
	_, err = holder.Exec(ctx, `LOCK TABLE walhook.delivery IN ACCESS SHARE MODE`)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: 30 * day}, st, zerolog.Nop(), reg)
	require.NoError(t, err)
	began := time.Now()
	res, err := r.RunOnce(ctx)
	require.NoError(t, err, "a lock not granted is not a failed run")
	require.Less(t, time.Since(began), store.PartitionLockTimeout+5*time.Second, "gave up after lock_timeout")
	require.True(t, res.Busy)
	require.Zero(t, res.Weeks)
	require.EqualValues(t, 2, res.Deliveries, "the default partitions' rows are still deleted")
	require.True(t, exists(t, pool, "delivery_p"+suffix))
	require.True(t, exists(t, pool, "event_p"+suffix), "the transaction rolled back: nothing dropped")
	require.Equal(t, 5, count(t, pool, `SELECT count(*) FROM walhook.delivery`))
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_lock_timeouts_total"), 0)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_runs_total", "ok"), 0)

	require.NoError(t, holder.Rollback(ctx))
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Busy)
	require.Equal(t, 1, res.Weeks)
	require.False(t, exists(t, pool, "delivery_p"+suffix))
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.delivery`))
}

// TestRetentionCreationBusyDoesNotStopTheDrop holds a lock on walhook.webhook that conflicts with
// creating a delivery partition (its foreign key adds triggers there) but not with dropping one:
// the run gives up creating the partitions ahead, still drops the old week, and the next run,
// the lock gone, creates them.
func TestRetentionCreationBusyDoesNotStopTheDrop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	old := store.HistoryWeek(time.Now()).AddDate(0, 0, -28)
	createWeek(t, pool, old)
	addHistoryAt(t, pool, wh, "week-", 4, old.Add(day), old.Add(day), "succeeded")

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.WithoutCancel(ctx)) }()
	_, err = holder.Exec(ctx, `LOCK TABLE walhook.webhook IN ROW EXCLUSIVE MODE`) // what an UPDATE of a webhook holds
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: 30 * day}, st, zerolog.Nop(), reg)
	require.NoError(t, err)
	// Three weeks on: three weeks to create (the migration made this week and the next two), the
	// old week past MaxAge, this one not.
	now := time.Now().AddDate(0, 0, 21)
	retention.SetNow(r, func() time.Time { return now })
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, res.Busy)
	require.Zero(t, res.PartitionsCreated)
	require.Equal(t, 1, res.Weeks, "the drop needs no lock on webhook")
	require.False(t, exists(t, pool, "delivery_p"+old.Format("20060102")))
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_lock_timeouts_total"), 0)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_partitions_dropped_total"), 0)

	require.NoError(t, holder.Rollback(ctx))
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Busy)
	require.Equal(t, 9, res.PartitionsCreated)
	require.True(t, exists(t, pool, "attempt_p"+store.HistoryWeek(now).Format("20060102")))
}

// TestRetentionWeekDropKeepsALeasedDeliveryRecordable claims the pending deliveries of a week,
// then drops that week while the dispatcher holds them (their HTTP tries in flight), then
// records their results by (id, event_at) as the dispatcher does: the rows moved into the
// default partitions take the results (state, lease cleared, the new attempt next to the old
// ones), so no delivery is lost or sent again because its week went away under it; the
// delivery still pending is claimed again, and the one just finished is kept for MaxAge.
func TestRetentionWeekDropKeepsALeasedDeliveryRecordable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	wk := newOldWeek(t)
	inWeek := wk.monday.Add(2*day + 3*time.Hour + 123456*time.Microsecond)
	pending := addHistoryAt(t, wk.pool, wk.wh, "leased-", 2, inWeek, inWeek, "pending")

	const token = "replica-a:1"
	claimed, err := wk.st.DispatchClaim(ctx, store.ClaimParams{Limit: 10, PerWebhook: 10, Lease: time.Minute, Token: token})
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	for _, c := range claimed {
		require.True(t, c.EventAt.Equal(inWeek), "claimed event_at %v, want %v", c.EventAt, inWeek)
	}

	r, err := retention.New(retention.Config{MaxAge: maxAge, BatchSize: 100, Pause: time.Millisecond}, wk.st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	retention.SetNow(r, wk.expiry)
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Weeks)
	require.EqualValues(t, 2, res.PendingMoved, "leased deliveries are pending: moved, not dropped")
	require.False(t, exists(t, wk.pool, "delivery_p"+wk.suffix))
	require.Equal(t, 2, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery_pdefault WHERE leased_by = '`+token+`'`),
		"the moved rows keep their lease")

	byID := map[int64]store.Claimed{}
	for _, c := range claimed {
		byID[c.ID] = c
	}
	done, again := byID[pending[0]], byID[pending[1]]
	started := time.Now().Add(-time.Second).UTC().Truncate(time.Microsecond)
	next := time.Now().Add(-time.Minute) // due at once: claimed again below
	status := 200
	result := func(c store.Claimed, o webhook.Outcome, s webhook.DeliveryState, next *time.Time) store.AttemptResult {
		return store.AttemptResult{
			DeliveryID: c.ID, EventAt: c.EventAt, LeaseToken: c.LeaseToken, CompanyID: c.CompanyID, WebhookID: c.WebhookID,
			N: 3, StartedAt: started, DurationMS: 12, RequestMethod: "POST", RequestURL: "https://example.com/hook",
			ResponseStatus: &status, Outcome: o, Trigger: "auto", State: s, NextAttemptAt: next, TouchWebhook: true,
		}
	}
	_, err = wk.st.DispatchRecord(ctx, []store.AttemptResult{
		result(done, webhook.OutcomeSucceeded, webhook.DeliverySucceeded, nil),
		result(again, webhook.OutcomeRetry, webhook.DeliveryPending, &next),
	}, time.Now().Add(-time.Hour))
	require.NoError(t, err)

	var state string
	var attempts int
	var leased bool
	for _, c := range []struct {
		id    int64
		state string
	}{{done.ID, "succeeded"}, {again.ID, "pending"}} {
		require.NoError(t, wk.pool.QueryRow(ctx, `SELECT state, attempts, leased_by IS NOT NULL FROM walhook.delivery_pdefault WHERE id = $1`, c.id).
			Scan(&state, &attempts, &leased))
		require.Equal(t, c.state, state, "delivery %d recorded in the default partition", c.id)
		require.Equal(t, 3, attempts)
		require.False(t, leased, "the lease is released")
		require.Equal(t, 3, count(t, wk.pool, `SELECT count(*) FROM walhook.attempt_pdefault WHERE delivery_id = `+strconv.FormatInt(c.id, 10)),
			"the two moved attempts and the recorded one, side by side")
	}

	// The one still pending is claimed again (once), by the same id and time.
	claimed, err = wk.st.DispatchClaim(ctx, store.ClaimParams{Limit: 10, PerWebhook: 10, Lease: time.Minute, Token: "replica-a:2"})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, again.ID, claimed[0].ID)
	require.True(t, claimed[0].EventAt.Equal(inWeek))

	// The finished one was changed just now: the next run keeps it (and its event) for MaxAge.
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Deliveries)
	require.Zero(t, res.Events)
	require.Equal(t, 2, count(t, wk.pool, `SELECT count(*) FROM walhook.event_pdefault WHERE source_key LIKE 'leased-%'`))
}

// TestRetentionKeepsAWeekWithTooManyPending gives a week past the retention age more pending
// deliveries than MoveLimit (a turned-off webhook's queue): moving them would hold the history's
// ACCESS EXCLUSIVE locks, and with them every claim and capture, for as long as the copy takes.
// The run keeps the week instead, deletes its finished deliveries (with their attempts) and
// their events row by row, and leaves the pending ones, their events and attempts where they
// are. Once the queue is down to MoveLimit, the week is dropped as usual.
func TestRetentionKeepsAWeekWithTooManyPending(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	wk := newOldWeek(t)
	inWeek := wk.monday.Add(day)
	addHistoryAt(t, wk.pool, wk.wh, "done-", 12, inWeek, inWeek, "succeeded")
	pending := addHistoryAt(t, wk.pool, wk.wh, "queued-", 5, inWeek, inWeek, "pending")

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: maxAge, BatchSize: 5, Pause: time.Millisecond, MoveLimit: 4}, wk.st, zerolog.Nop(), reg)
	require.NoError(t, err)
	retention.SetNow(r, wk.expiry)
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Weeks, "5 pending deliveries, a move limit of 4: not dropped")
	require.Zero(t, res.PendingMoved)
	require.Equal(t, 1, res.WeeksKept)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_weeks_kept"), 0)
	require.EqualValues(t, 12, res.Deliveries, "the week's finished deliveries, deleted row by row")
	require.EqualValues(t, 12, res.Events)
	require.True(t, exists(t, wk.pool, "delivery_p"+wk.suffix))
	require.Equal(t, 5, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery_p`+wk.suffix+` WHERE state = 'pending'`))
	require.Equal(t, 5, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery_p`+wk.suffix))
	require.Equal(t, 5, count(t, wk.pool, `SELECT count(*) FROM walhook.event_p`+wk.suffix))
	require.Equal(t, 10, count(t, wk.pool, `SELECT count(*) FROM walhook.attempt_p`+wk.suffix), "the pending deliveries' attempts stay, the others went with their deliveries")

	// One delivery of the queue is sent: four left, the limit — the week is dropped and they move.
	_, err = wk.pool.Exec(ctx, `UPDATE walhook.delivery SET state = 'succeeded' WHERE id = $1`, pending[0])
	require.NoError(t, err)
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Weeks)
	require.Zero(t, res.WeeksKept)
	require.InDelta(t, 0, xtest.Sample(t, reg, "walhook_retention_weeks_kept"), 0)
	require.EqualValues(t, 4, res.PendingMoved)
	require.False(t, exists(t, wk.pool, "delivery_p"+wk.suffix))
	require.Equal(t, 4, count(t, wk.pool, `SELECT count(*) FROM walhook.delivery_pdefault WHERE state = 'pending'`))
}

// TestRetentionLeavesAWeekFullOfDatedAheadRowsInTheDefault dates more events than MoveLimit in a
// week ahead of the partitions (an outbox writer's created_at, a source clock ahead): creating
// that week's partitions would move them out of the default partitions while holding the
// history's locks, stopping every claim and capture for as long. The run leaves that week
// without partitions (its rows stay in the default partitions, where retention expires them row
// by row), still creates the weeks after it, and creates it once few enough rows are left.
func TestRetentionLeavesAWeekFullOfDatedAheadRowsInTheDefault(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	monday, suffix := weekFromNow(5)
	ahead := addHistoryAt(t, pool, wh, "ahead-", 5, monday.Add(time.Hour), time.Now(), "succeeded")

	reg := prometheus.NewRegistry()
	r, err := retention.New(retention.Config{MaxAge: 0, MoveLimit: 4}, st, zerolog.Nop(), reg)
	require.NoError(t, err)
	retention.SetNow(r, func() time.Time { return monday.Add(2 * 24 * time.Hour) })
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, []time.Time{monday}, res.WeeksNotCreated)
	require.Equal(t, 12, res.PartitionsCreated, "the two weeks after it, and the two before it missed since the newest")
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_retention_weeks_not_created"), 0)
	require.False(t, exists(t, pool, "event_p"+suffix))
	require.True(t, exists(t, pool, "event_p"+monday.AddDate(0, 0, 7).Format("20060102")))
	require.Equal(t, 5, count(t, pool, `SELECT count(*) FROM walhook.delivery_pdefault`))
	require.Equal(t, 5, count(t, pool, `SELECT count(*) FROM walhook.event_pdefault`))
	require.NoError(t, r.EnsurePartitions(ctx))
	require.False(t, exists(t, pool, "event_p"+suffix), "nor at start")

	// Four left: the limit. The week is created and they move into it.
	_, err = pool.Exec(ctx, `DELETE FROM walhook.delivery WHERE id = $1`, ahead[0])
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `DELETE FROM walhook.event e WHERE NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.event_id = e.id)`)
	require.NoError(t, err)
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, res.WeeksNotCreated)
	require.Equal(t, 3, res.PartitionsCreated)
	require.InDelta(t, 0, xtest.Sample(t, reg, "walhook_retention_weeks_not_created"), 0)
	require.Equal(t, 4, count(t, pool, `SELECT count(*) FROM walhook.delivery_p`+suffix))
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.delivery_pdefault`))
}

// TestRetentionCreationFailureDoesNotStopExpiry makes the creation of a week ahead fail (a
// trigger refuses the row it moves out of the default partition, as a missing privilege or a
// statement timeout would): the weeks after it are still created, the old week is still
// dropped and the default partitions' old rows deleted, and the run then reports the failure.
func TestRetentionCreationFailureDoesNotStopExpiry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	now := store.HistoryWeek(time.Now()).AddDate(0, 0, 35).Add(2 * day)
	old := store.HistoryWeek(now).AddDate(0, 0, -42)
	createWeek(t, pool, old)
	addHistoryAt(t, pool, wh, "old-", 3, old.Add(day), old.Add(day), "succeeded")
	addHistoryAt(t, pool, wh, "skewed-", 2, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(-40*day), "succeeded")
	addHistoryAt(t, pool, wh, "boom", 1, store.HistoryWeek(now).Add(time.Hour), now, "succeeded")
	_, err := pool.Exec(ctx, `CREATE FUNCTION walhook.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.source_key LIKE 'boom%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER test_refuse BEFORE INSERT ON walhook.event FOR EACH ROW EXECUTE FUNCTION walhook.test_refuse()`)
	require.NoError(t, err)

	r, err := retention.New(retention.Config{MaxAge: maxAge, BatchSize: 10, Pause: time.Millisecond}, st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	retention.SetNow(r, func() time.Time { return now })
	res, err := r.RunOnce(ctx)
	require.ErrorContains(t, err, "refused by the test")
	require.False(t, res.Busy)
	require.False(t, exists(t, pool, "event_p"+store.HistoryWeek(now).Format("20060102")), "the failed week")
	require.Equal(t, 12, res.PartitionsCreated, "the two weeks after it, and the two before it missed since the newest")
	require.GreaterOrEqual(t, res.Weeks, 1, "the old week is dropped all the same (and the test database's own, now past the age)")
	require.False(t, exists(t, pool, "event_p"+old.Format("20060102")))
	require.EqualValues(t, 2, res.Deliveries, "and the default partitions' old rows deleted")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.event`), "the refused row stays where it was")
}

// TestRetentionFillsTheWeeksOfAnOutage starts a relay seven weeks after the last one stopped
// (the partitions then reached three weeks ahead): before capture resumes with the backlog of
// the weeks in between, the start-up creation makes their partitions too — those whose end is
// not yet MaxAge old — so the backlog lands in weeks that can be dropped whole, not in the
// default partitions (deleted row by row, and scanned at every later creation under the
// history's locks).
func TestRetentionFillsTheWeeksOfAnOutage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool, wh := seeded(t)
	w0 := store.HistoryWeek(time.Now()) // the migration made this week and the next two
	name := func(tbl string, w int) string { return tbl + "_p" + w0.AddDate(0, 0, 7*w).Format("20060102") }
	require.True(t, exists(t, pool, name("event", 2)))
	require.False(t, exists(t, pool, name("event", 3)))

	r, err := retention.New(retention.Config{MaxAge: 21 * day}, st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	now := w0.AddDate(0, 0, 7*7).Add(day)
	retention.SetNow(r, func() time.Time { return now })
	require.NoError(t, r.EnsurePartitions(ctx))
	require.False(t, exists(t, pool, name("event", 3)), "its end is MaxAge old: it would be dropped at once")
	for w := 4; w <= 9; w++ {
		for _, tbl := range []string{"event", "delivery", "attempt"} {
			require.True(t, exists(t, pool, name(tbl, w)), "%s: the outage's weeks since, this week and two ahead", name(tbl, w))
		}
	}
	// The backlog of the outage's weeks lands in them.
	backlog := w0.AddDate(0, 0, 7*5).Add(3 * day)
	addHistoryAt(t, pool, wh, "backlog-", 3, backlog, now, "pending")
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM walhook.delivery_p`+w0.AddDate(0, 0, 35).Format("20060102")))
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.delivery_pdefault`))
}
