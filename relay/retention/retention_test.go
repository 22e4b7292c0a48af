package retention_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/retention"
	"github.com/walhook/walhook/relay/store"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// seed creates a company, a catalog entry and a webhook, and returns the webhook id.
func seed(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	ctx := t.Context()
	_, err := pool.Exec(ctx, `INSERT INTO walhook.company (id, name) VALUES ('1', 'Acme')`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO walhook.event_type (key, source) VALUES ('contact.created', 'outbox')`)
	require.NoError(t, err)
	var id int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO walhook.webhook (company_id, name, url, method, event_keys, signing_secret_enc)
		VALUES ('1', 'w', 'https://example.com/hook', 'POST', '{contact.created}', '\x00') RETURNING id`).Scan(&id))
	return id
}

// addHistory inserts n events captured age ago, each with one delivery in state (created and
// updated age ago) and two attempts. prefix keeps source keys unique.
func addHistory(t *testing.T, pool *pgxpool.Pool, webhookID int64, prefix string, n int, age time.Duration, state string) {
	t.Helper()
	ctx := t.Context()
	at := time.Now().Add(-age)
	_, err := pool.Exec(ctx, `
WITH e AS (
  INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at, captured_at)
  SELECT $1 || g, '1', 'contact.created', '{}', $2, $2 FROM generate_series(1, $3::int) g
  RETURNING id
), d AS (
  INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_key, state, created_at, updated_at)
  SELECT '1', $4, e.id, 'contact.created', $5, $2, $2 FROM e
  RETURNING id
)
INSERT INTO walhook.attempt (delivery_id, company_id, webhook_id, n, started_at, request_method, request_url, outcome)
SELECT d.id, '1', $4, k, $2, 'POST', 'https://example.com/hook', 'retry' FROM d, generate_series(1, 2) k`,
		prefix, at, n, webhookID, state)
	require.NoError(t, err)
}

// addOrphanEvents inserts n events captured age ago that no webhook wanted.
func addOrphanEvents(t *testing.T, pool *pgxpool.Pool, prefix string, n int, age time.Duration) {
	t.Helper()
	_, err := pool.Exec(t.Context(), `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at, captured_at)
		SELECT $1 || g, '1', 'contact.created', '{}', $2, $2 FROM generate_series(1, $3::int) g`, prefix, time.Now().Add(-age), n)
	require.NoError(t, err)
}

// metric returns the value of the sample of name whose single label has value label ("" for an
// unlabelled metric).
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() != label {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no sample %s{%s}", name, label)
	return 0
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
	st, pool := xtest.Store(t)
	wh := seed(t, pool)
	const day = 24 * time.Hour
	addHistory(t, pool, wh, "old-ok-", 25, 40*day, "succeeded")
	addHistory(t, pool, wh, "old-failed-", 5, 40*day, "failed")
	addHistory(t, pool, wh, "old-pending-", 3, 40*day, "pending") // still work to do: kept
	addHistory(t, pool, wh, "new-ok-", 10, 2*day, "succeeded")
	addOrphanEvents(t, pool, "old-orphan-", 4, 40*day)
	addOrphanEvents(t, pool, "new-orphan-", 2, 2*day)
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
	require.EqualValues(t, 30, res.Deliveries, "the 30 old finished deliveries")
	require.EqualValues(t, 34, res.Events, "their 30 events and the 4 old unreferenced ones")
	require.EqualValues(t, 2, res.LoginCodes, "the two sign-in codes expired before the cutoff")
	// 30 deliveries in batches of 7: 5 statements (7,7,7,7,2); 34 events: 5 (7,7,7,7,6); 1 for codes.
	require.Equal(t, 11, res.Batches, "deleted in batches of at most 7 rows")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM walhook.login_code`))

	require.Equal(t, 13, count(t, pool, `SELECT count(*) FROM walhook.delivery`), "3 old pending + 10 new")
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM walhook.delivery WHERE state = 'pending'`))
	require.Equal(t, 26, count(t, pool, `SELECT count(*) FROM walhook.attempt`), "attempts of the kept deliveries only")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.attempt a WHERE NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.id = a.delivery_id)`))
	require.Equal(t, 15, count(t, pool, `SELECT count(*) FROM walhook.event`), "3 old with pending deliveries + 10 new + 2 new orphans")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'old-ok-%' OR source_key LIKE 'old-orphan-%'`))

	require.InDelta(t, 30, metric(t, reg, "walhook_retention_deleted_total", retention.TableDelivery), 0)
	require.InDelta(t, 34, metric(t, reg, "walhook_retention_deleted_total", retention.TableEvent), 0)
	require.InDelta(t, 1, metric(t, reg, "walhook_retention_runs_total", "ok"), 0)
	require.Positive(t, metric(t, reg, "walhook_retention_last_run_timestamp_seconds", ""))

	// A second run finds nothing more to delete.
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Deliveries+res.Events)
}

func TestRetentionOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	wh := seed(t, pool)
	addHistory(t, pool, wh, "old-", 5, 40*24*time.Hour, "succeeded")

	release, ok, err := st.RetentionLock(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	r, err := retention.New(retention.Config{MaxAge: 24 * time.Hour}, st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	res, err := r.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, res.Skipped, "another session holds the lock")
	require.Equal(t, 5, count(t, pool, `SELECT count(*) FROM walhook.delivery`))

	release()
	res, err = r.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Skipped)
	require.EqualValues(t, 5, res.Deliveries)
}

func TestRetentionDisabled(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	wh := seed(t, pool)
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

// TestRetentionDoesNotBlockCaptureOrDispatch deletes a large old history in small batches while
// other sessions keep inserting events and deliveries (what capture does) and claiming due
// deliveries with FOR UPDATE SKIP LOCKED (what dispatch does), with a short lock_timeout: had
// retention held a lock they needed, their statements would fail.
func TestRetentionDoesNotBlockCaptureOrDispatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	wh := seed(t, pool)
	addHistory(t, pool, wh, "old-", 6000, 90*24*time.Hour, "succeeded")

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
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `WITH e AS (INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
			VALUES ('live-' || $1::int, '1', 'contact.created', '{}', now()) RETURNING id)
			INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_key) SELECT '1', $2, id, 'contact.created' FROM e`, i, wh); err != nil {
			return err
		}
		inserted.Add(1)
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		select {
		case rounds <- struct{}{}:
		default:
		}
		return nil
	})
	go worker(func(ctx context.Context, _ int) error { // dispatch: claim, then finish, a due delivery
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE walhook.delivery SET state = 'succeeded', attempts = attempts + 1, updated_at = now()
			WHERE id IN (SELECT id FROM walhook.delivery WHERE state = 'pending' AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT 5 FOR UPDATE SKIP LOCKED)`)
		if err != nil {
			return err
		}
		claimed.Add(tag.RowsAffected())
		return tx.Commit(ctx)
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
	require.GreaterOrEqual(t, res.Batches, 60, "6,000 rows per table in batches of 200")
	require.Positive(t, inserted.Load(), "capture kept inserting while retention ran")
	live := count(t, pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'live-%'`)
	require.EqualValues(t, inserted.Load(), live, "every live event is still there")
	require.Equal(t, live, count(t, pool, `SELECT count(*) FROM walhook.delivery`), "every live delivery is still there")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM walhook.event WHERE source_key LIKE 'old-%'`))
}
