package capture

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// quarantinedTooLarge lists the too_large quarantine rows as "event_key company payload-bytes",
// ordered by event key.
func (f *fixture) quarantinedTooLarge(t *testing.T) []string {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `SELECT event_key || ' ' || company_id || ' ' || octet_length(payload)
		FROM walhook.capture_quarantine WHERE reason LIKE 'too_large: event of % bytes or more exceeds --capture-max-event-bytes 65536%'
		ORDER BY event_key, source_key`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestOversizedEventsQuarantined: one source transaction holds, between two small rows, a
// table row, an outbox row and a walhook.emit message each over MaxEventBytes, and a row whose
// raw bytes are under it but whose JSON (every byte escaped as \u0001) is over it. None of the
// four is delivered; each is quarantined as too_large without its payload (company, event key,
// source key, size in the reason); the small rows of the same transaction and a later one are
// stored, the outbox row is deleted, and the slot is acknowledged past them.
func TestOversizedEventsQuarantined(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	cfg.MaxEventBytes = 64 << 10
	reg := prometheus.NewRegistry()
	f.prepare(t, cfg)
	f.startStreaming(t, cfg, reg)

	tx, err := f.app.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'before');
		INSERT INTO contacts (company_id, name, note) VALUES ('1', 'huge', repeat('x', 200000));
		INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ('1', 'invoice.paid', jsonb_build_object('memo', repeat('y', 200000)));
		SELECT walhook.emit('2', 'invoice.paid', jsonb_build_object('memo', repeat('z', 200000)));
		INSERT INTO things (company_id, big) VALUES ('1', repeat(chr(1), 20000));
		INSERT INTO contacts (company_id, name) VALUES ('1', 'after')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('2', 'next')`)
	require.NoError(t, err)

	f.waitEventsWithin(t, 3, 30*time.Second)
	require.Eventually(t, func() bool { return len(f.quarantinedTooLarge(t)) == 4 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"contact.created 1 0", "invoice.paid 1 0", "invoice.paid 2 0", "thing.created 1 0"}, f.quarantinedTooLarge(t),
		"each oversized event quarantined once, with its company and event key, without payload")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.capture_quarantine WHERE source_key LIKE 'outbox:%'`))
	require.Equal(t, 3, f.count(t, `SELECT count(*) FROM walhook.capture_quarantine WHERE source_key LIKE 'wal:%'`))
	require.Equal(t, 3, f.count(t, "SELECT count(*) FROM walhook.event"))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'before'`))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'after'`))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'next'`))
	require.Zero(t, f.count(t, `SELECT count(*) FROM walhook.event WHERE event_key <> 'contact.created'`))
	require.Zero(t, f.count(t, `SELECT count(*) FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id
		WHERE e.payload->'data'->>'name' = 'huge'`))
	f.waitOutboxEmpty(t)
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_quarantined_total", quarantineTooLarge) == 4
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		s, err := f.src.CaptureSlotStatus(ctx, f.slot)
		return err == nil && s.LagBytes < 1<<16
	}, 10*time.Second, 50*time.Millisecond, "the position past the oversized events is acknowledged")

	// Such an event cannot be retried: its payload was not kept.
	var id int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT id FROM walhook.capture_quarantine WHERE event_key = 'thing.created'`).Scan(&id))
	_, err = f.st.CaptureQuarantineRetry(ctx, id)
	require.ErrorIs(t, err, store.ErrPayloadNotKept)
	require.Equal(t, 4, f.count(t, "SELECT count(*) FROM walhook.capture_quarantine"))
}

// TestOversizedOutboxPollMode: in poll mode (and so for walhook.emit there) the claim does not
// read a payload over MaxEventBytes; the row is quarantined as too_large without it, deleted
// with the others, and its neighbours are stored.
func TestOversizedOutboxPollMode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	_, err := f.app.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload)
		SELECT '1', 'invoice.paid', jsonb_build_object('n', g, 'memo', CASE WHEN g = 3 THEN repeat('y', 200000) ELSE 'ok' END)
		FROM generate_series(1, 5) g`)
	require.NoError(t, err)
	cfg := f.config()
	cfg.Mode = store.CapturePoll
	cfg.MaxEventBytes = 64 << 10
	reg := prometheus.NewRegistry()
	f.start(t, cfg, reg, nil)

	f.waitEventsWithin(t, 4, 20*time.Second)
	f.waitOutboxEmpty(t)
	require.Equal(t, []string{"invoice.paid 1 0"}, f.quarantinedTooLarge(t))
	require.Equal(t, 4, f.count(t, "SELECT count(*) FROM walhook.event"))
	require.Zero(t, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'n' = '3'`))
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_quarantined_total", quarantineTooLarge) == 1
	}, 10*time.Second, 20*time.Millisecond)

	// walhook.emit in poll mode goes through the outbox: the same.
	_, err = f.app.Exec(ctx, `SELECT walhook.emit('2', 'invoice.paid', jsonb_build_object('memo', repeat('z', 200000)))`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"small": true}')`)
	require.NoError(t, err)
	f.waitEventsWithin(t, 5, 20*time.Second)
	require.Eventually(t, func() bool { return len(f.quarantinedTooLarge(t)) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"invoice.paid 1 0", "invoice.paid 2 0"}, f.quarantinedTooLarge(t))
}

// TestPartFlushedByBytes: a transaction of 90 rows of 100 kB has fewer events than a first part
// (partEvents/5 = 100) but more bytes (partBytes/5, 0.8 MiB): it is handed over in parts, the
// first stored before the transaction is read to its end and acknowledging nothing.
func TestPartFlushedByBytes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	f.prepare(t, cfg)
	_, err := f.app.Exec(ctx, `INSERT INTO contacts (company_id, name, note) SELECT '1', 'c' || g, repeat(md5(g::text), 3125) FROM generate_series(1, 90) g`)
	require.NoError(t, err)
	parts := f.fanOuts(t, cfg, 90)
	require.Zero(t, parts[0].end, "the first part acknowledges nothing")
	require.Less(t, parts[0].stored, 90, "the first fan-out stores a part of the transaction, not all of it")
	require.Equal(t, 90, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
}
