package capture

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// waitEventsWithin waits up to d for the events table to hold n rows, and fails (with what it
// and the outbox hold) otherwise: a capture that stopped must fail the test, not hang it.
func (f *fixture) waitEventsWithin(t *testing.T, n int, d time.Duration) {
	t.Helper()
	if within(t, d, func() bool { return f.count(t, "SELECT count(*) FROM walhook.event") >= n }) {
		return
	}
	var keys string
	require.NoError(t, f.pool.QueryRow(t.Context(),
		`SELECT coalesce(string_agg(event_key || ' ' || coalesce(payload->'data'->>'name', ''), ', ' ORDER BY id), '') FROM walhook.event`).Scan(&keys))
	t.Fatalf("capture stopped: %d of %d events after %v: %s; outbox: %s", f.count(t, "SELECT count(*) FROM walhook.event"), n, d, keys, f.outboxDump(t))
}

// TestRefusedValueQuarantined is issue 12's finding 1: a json column holding "\u0000" passes
// json.Valid but jsonb refuses it (SQLSTATE 22P05). Before the quarantine the whole fan-out
// failed, capture restarted and replayed the same transaction forever, and the next contact of
// every company was never captured. Now the refused event is set aside with its reason and
// position; the good events of the same source transaction and everything after are stored.
func TestRefusedValueQuarantined(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, reg := newStreaming(t)

	tx, err := f.app.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO things (company_id, js, big) VALUES ('1', '{"ok": 1}', 'good');
		INSERT INTO things (company_id, js, big) VALUES ('1', '{"a": "x\u0000y"}', 'bad');
		INSERT INTO contacts (company_id, name) VALUES ('1', 'Same transaction')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('2', 'After')`)
	require.NoError(t, err)

	f.waitEventsWithin(t, 3, 20*time.Second)
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE event_key = 'thing.created' AND payload->'data'->>'big' = 'good'`))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'Same transaction'`))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'After'`))
	require.Zero(t, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'big' = 'bad'`))

	var sourceKey, company, eventKey, sqlstate, reason string
	var payload []byte
	var attempts int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT source_key, company_id, event_key, sqlstate, reason, payload, attempts
		FROM walhook.capture_quarantine`).Scan(&sourceKey, &company, &eventKey, &sqlstate, &reason, &payload, &attempts))
	require.Regexp(t, `^wal:[0-9A-F]{16}:2:thing\.created$`, sourceKey, "the second change of its source transaction")
	require.Equal(t, "1", company)
	require.Equal(t, "thing.created", eventKey)
	require.Equal(t, "22P05", sqlstate)
	require.Contains(t, reason, "SQLSTATE 22P05: unsupported Unicode escape sequence")
	require.Contains(t, string(payload), `"js":{"a":"x\u0000y"}`, "the envelope exactly as built")
	require.Equal(t, 1, attempts)
	// The counters move right after the commits that made the rows visible: wait for them.
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_quarantined_total", "data_exception") >= 1 &&
			xtest.Sample(t, reg, "walhook_capture_events_total", "thing.created") >= 1
	}, 10*time.Second, 20*time.Millisecond)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_quarantined_total", "data_exception"), 0)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_events_total", "thing.created"), 0, "the quarantined event is not counted as captured")

	// The position past the bad event is acknowledged: a restart does not meet it again.
	require.Eventually(t, func() bool {
		s, err := f.src.CaptureSlotStatus(ctx, f.slot)
		return err == nil && s.LagBytes < 1<<16 && f.count(t, "SELECT count(*) FROM walhook.capture_quarantine") == 1
	}, 10*time.Second, 50*time.Millisecond)
}

// TestTransientFailureNeverQuarantines puts both kinds of failure side by side: a refused row
// among good rows (permanent: quarantined), while capture's fan-out connection is terminated
// (pg_terminate_backend, SQLSTATE 57P01: transient) twice as it waits on a lock. The transient
// failures restart capture and replay the same transactions; nothing good is quarantined, every
// good row is stored once, the bad one is quarantined once.
func TestTransientFailureNeverQuarantines(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, reg := newStreaming(t)

	lock, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(context.WithoutCancel(ctx)) }()
	_, err = lock.Exec(ctx, `LOCK TABLE walhook.event IN SHARE ROW EXCLUSIVE MODE`)
	require.NoError(t, err)

	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) SELECT '1', 'before ' || g FROM generate_series(1, 5) g`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `INSERT INTO things (company_id, js, big) VALUES ('1', '{"a": "\u0000"}', 'bad')`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) SELECT '2', 'after ' || g FROM generate_series(1, 5) g`)
	require.NoError(t, err)

	killed := 0
	for range 2 {
		// capture's fan-out waits on the lock; kill its connection
		var pid int
		require.Eventually(t, func() bool {
			err := f.pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO walhook.event%'
				AND pid <> $1`, killed).Scan(&pid)
			return err == nil
		}, 20*time.Second, 20*time.Millisecond)
		killed = pid
		_, err := f.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
		require.NoError(t, err)
		require.Zero(t, f.count(t, "SELECT count(*) FROM walhook.capture_quarantine"), "a transient failure quarantines nothing")
	}
	require.NoError(t, lock.Rollback(ctx))

	f.waitEventsWithin(t, 10, 30*time.Second)
	require.Equal(t, 10, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
	require.Equal(t, 10, f.count(t, "SELECT count(*) FROM walhook.event WHERE event_key = 'contact.created'"))
	require.Eventually(t, func() bool {
		return f.count(t, "SELECT count(*) FROM walhook.capture_quarantine") == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM walhook.capture_quarantine WHERE event_key = 'thing.created' AND sqlstate = '22P05'"))
	require.GreaterOrEqual(t, xtest.Sample(t, reg, "walhook_capture_failures_total", "commit"), 2.0)
}

// TestPollModeQuarantines: in poll mode the claim and the fan-out share one transaction; a
// refused event (here a constraint the operator added to walhook.event) is quarantined through
// a savepoint, and the claim's other events are stored and every claimed outbox row deleted.
func TestPollModeQuarantines(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	_, err := f.pool.Exec(ctx, `ALTER TABLE walhook.event ADD CONSTRAINT test_no_poison
		CHECK (payload->'data'->>'memo' IS DISTINCT FROM 'poison') NOT VALID`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload)
		SELECT '1', 'invoice.paid', jsonb_build_object('memo', CASE WHEN g = 7 THEN 'poison' ELSE 'ok' END, 'n', g)
		FROM generate_series(1, 20) g`)
	require.NoError(t, err)
	cfg := f.config()
	cfg.Mode = store.CapturePoll
	reg := prometheus.NewRegistry()
	f.start(t, cfg, reg, nil)

	f.waitEventsWithin(t, 19, 20*time.Second)
	f.waitOutboxEmpty(t)
	require.Equal(t, 19, f.count(t, "SELECT count(*) FROM walhook.event"))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.capture_quarantine
		WHERE sqlstate = '23514' AND source_key LIKE 'outbox:%' AND convert_from(payload, 'UTF8')::jsonb->'data'->>'n' = '7'`))
	// With one database the counter moves right after the claim's transaction commits: wait for it.
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_quarantined_total", "integrity_violation") >= 1
	}, 10*time.Second, 20*time.Millisecond)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_quarantined_total", "integrity_violation"), 0)
}

// TestUnstorableEventSkipped: when even the quarantine row is refused for good (here a
// constraint that refuses every row), the event is logged with its position, counted as
// skipped{reason="unstorable"} and left out; capture goes on.
func TestUnstorableEventSkipped(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	_, err := f.pool.Exec(ctx, `ALTER TABLE walhook.capture_quarantine ADD CONSTRAINT test_refuse_all CHECK (false) NOT VALID`)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	f.startStreaming(t, f.config(), reg)
	_, err = f.app.Exec(ctx, `INSERT INTO things (company_id, js, big) VALUES ('1', '{"a": "\u0000"}', 'bad')`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'After')`)
	require.NoError(t, err)
	f.waitEventsWithin(t, 1, 20*time.Second)
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'After'`))
	require.Zero(t, f.count(t, "SELECT count(*) FROM walhook.capture_quarantine"))
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_skipped_total", skipUnstorable), 0)
	require.Zero(t, xtest.Sample(t, reg, "walhook_capture_quarantined_total", "data_exception"))
}
