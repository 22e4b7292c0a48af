package capture

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// sourceSystem is the application's cluster identifier (what IDENTIFY_SYSTEM answers).
func (f *fixture) sourceSystem(t *testing.T) string {
	t.Helper()
	var id string
	require.NoError(t, f.app.QueryRow(t.Context(), `SELECT system_identifier::text FROM pg_control_system()`).Scan(&id))
	return id
}

// TestCrashAfterCommitResumesFromStoredPosition: capture stops (as if killed) right after a
// fan-out transaction commits in walhook's database and before the slot is acknowledged. The
// position stored with the events is ahead of the slot's; the next stream starts there, so the
// transactions already stored are not even read again, and every event is stored exactly once.
func TestCrashAfterCommitResumesFromStoredPosition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	cfg.StatusInterval = time.Hour // never acknowledge
	cfg.BatchEvents = 10
	f.prepare(t, cfg)
	const total = 40
	for i := range total { // one event per source transaction
		_, err := f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', jsonb_build_object('n', $1::int))`, i)
		require.NoError(t, err)
	}

	killed := make(chan struct{})
	var once atomic.Bool
	var mu sync.Mutex
	var lastEnd uint64
	stop := f.start(t, cfg, nil, func(c *Capture) {
		c.afterCommit = func(end uint64) {
			mu.Lock()
			lastEnd = max(lastEnd, end)
			mu.Unlock()
			if end > 0 && !once.Swap(true) {
				close(killed)
			}
		}
	})
	<-killed
	stop()
	first := f.count(t, "SELECT count(*) FROM walhook.event")
	require.Positive(t, first)
	require.Less(t, first, total, "stopped before the end")
	pos, err := f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	// The position is at least the end of the last batch seen committed: a batch whose commit
	// was under way when capture stopped may have committed too (its COMMIT reached the server
	// while the cancelled context made it report an error), with its position. That the stored
	// position never runs ahead of the stored events, the restart below shows: it reads only
	// what lies past the position and still ends with every event.
	mu.Lock()
	require.GreaterOrEqual(t, pos.LSN, lastEnd, "the position stored with the events is at least the end of the last batch committed")
	mu.Unlock()
	require.Equal(t, f.sourceSystem(t), pos.SystemID)
	f.waitInactive(t)
	s, err := f.src.CaptureSlotStatus(ctx, f.slot)
	require.NoError(t, err)
	confirmed, err := pglogrepl.ParseLSN(s.ConfirmedFlushLSN)
	require.NoError(t, err)
	require.Less(t, uint64(confirmed), pos.LSN, "the slot was not acknowledged: it is behind what is stored")

	reg := prometheus.NewRegistry()
	f.start(t, cfg, reg, nil)
	f.waitEvents(t, total)
	require.Equal(t, total, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
	require.Equal(t, total, f.count(t, "SELECT count(*) FROM walhook.event"))
	require.Equal(t, float64(total-first), xtest.Sample(t, reg, "walhook_capture_transactions_total"), "the restarted stream reads only the transactions after the stored position")
}

// TestStoredPositionOfAnotherCluster: the stored position is used only when it is this source
// cluster's and within its WAL. Events written before a stored position are skipped when it is
// this cluster's (that they are shows the position is used); they are all captured when the
// position names another cluster (a restored or replaced source) or lies beyond the source's WAL.
func TestStoredPositionOfAnotherCluster(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		system func(f *fixture) string
		ahead  uint64 // added to the position
		want   int
	}{
		"this cluster: used":               {system: func(f *fixture) string { return f.sourceSystem(t) }, want: 1},
		"another cluster: ignored":         {system: func(*fixture) string { return "7000000000000000001" }, want: 6},
		"beyond the source's WAL: ignored": {system: func(f *fixture) string { return f.sourceSystem(t) }, ahead: 1 << 40, want: 6},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			f := newFixture(t)
			cfg := f.config()
			f.prepare(t, cfg)
			for i := range 5 {
				_, err := f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', jsonb_build_object('n', $1::int))`, i)
				require.NoError(t, err)
			}
			var at string
			require.NoError(t, f.app.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&at))
			lsn, err := pglogrepl.ParseLSN(at)
			require.NoError(t, err)
			_, err = f.st.CaptureCommit(ctx, store.CaptureBatch{Position: store.CapturePosition{
				Slot: f.slot, SystemID: tc.system(f), LSN: uint64(lsn) + tc.ahead}})
			require.NoError(t, err)

			f.startStreaming(t, cfg, nil)
			_, err = f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"n": 100}')`)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				return f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'n' = '100'`) == 1
			}, 20*time.Second, 20*time.Millisecond)
			require.Equal(t, tc.want, f.count(t, "SELECT count(*) FROM walhook.event"))
		})
	}
}

// TestConsumedOutboxRowsDeletedAgain: outbox rows are deleted (in the source, with two databases)
// once their events are stored; rows left behind by a crash between the two (put back here with
// their ids and created_at) are claimed again at the next start, store nothing twice, and are
// deleted. An event's time is its row's created_at, whichever way it is read (the stream, the
// start-up sweep, the poller): the replay dedupe is (source_key, occurred_at).
func TestConsumedOutboxRowsDeletedAgain(t *testing.T) {
	t.Parallel()
	for _, mode := range []store.CaptureMode{store.CaptureWAL, store.CapturePoll} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			f := newFixture(t)
			cfg := f.config()
			cfg.Mode = mode
			stop := f.start(t, cfg, nil, nil)
			if mode == store.CaptureWAL {
				f.waitStreaming(t)
			}
			// created_at is the events' time; the application may write any, infinity included.
			var first int64
			require.NoError(t, f.app.QueryRow(ctx, `WITH r AS (INSERT INTO walhook.outbox (company_id, event_key, payload, created_at)
				SELECT '1', 'invoice.paid', jsonb_build_object('n', g), (ARRAY[now(), '1999-01-01 00:00:00+00', 'infinity'])[g]
				FROM generate_series(1, 3) g RETURNING id) SELECT min(id) FROM r`).Scan(&first))
			f.waitEvents(t, 3)
			f.waitOutboxEmpty(t)
			stop()

			// As if the deletes had not happened: the same rows, the same ids.
			// As a crash before their delete would leave them: the same rows, ids and created_at
			// (infinity stays infinity; its event's time is clamped).
			var at []time.Time
			rows, err := f.pool.Query(ctx, `SELECT occurred_at FROM walhook.event ORDER BY (payload->'data'->>'n')::int`)
			require.NoError(t, err)
			for rows.Next() {
				var a time.Time
				require.NoError(t, rows.Scan(&a))
				at = append(at, a)
			}
			require.NoError(t, rows.Err())
			require.Len(t, at, 3)
			require.Equal(t, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), at[1].UTC())
			require.Equal(t, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), at[2].UTC())
			_, err = f.app.Exec(ctx, `INSERT INTO walhook.outbox (id, company_id, event_key, payload, created_at) OVERRIDING SYSTEM VALUE
				SELECT g + $1::bigint, '1', 'invoice.paid', jsonb_build_object('n', g), (ARRAY[$2::timestamptz, '1999-01-01 00:00:00+00', 'infinity'])[g]
				FROM generate_series(1, 3) g`, first-1, at[0])
			require.NoError(t, err)

			f.start(t, cfg, nil, nil)
			f.waitOutboxEmpty(t)
			require.Equal(t, 3, f.count(t, "SELECT count(*) FROM walhook.event"), "nothing stored twice")
			require.Equal(t, 3, f.count(t, "SELECT count(*) FROM walhook.delivery"))
		})
	}
}

// TestDecoderSkipsStoredTransactions: with a stored position, a transaction whose commit record
// starts before it (so it ends at or before it) decodes into nothing, and so does a
// non-transactional message before it; the transactions after it decode as usual.
func TestDecoderSkipsStoredTransactions(t *testing.T) {
	t.Parallel()
	d := newDecoder(nil, nil, nil)
	d.stored = 0x1000
	begin := func(final uint64) []byte {
		b := []byte{'B'}
		b = be64(b, final)
		b = be64(b, 0)
		return append(b, 0, 0, 0, 1)
	}
	commit := func(lsn, end uint64) []byte {
		b := []byte{'C', 0}
		b = be64(b, lsn)
		b = be64(b, end)
		return be64(b, 0)
	}
	message := func(lsn uint64) []byte {
		b := []byte{'M', 0}
		b = be64(b, lsn)
		b = append(b, "walhook\x00"...)
		return append(b, 0, 0, 0, 2, '{', '}')
	}
	handle := func(data []byte) *txn {
		t.Helper()
		tx, err := d.handle(t.Context(), data)
		require.NoError(t, err)
		return tx
	}
	require.Nil(t, handle(begin(0x0f00)))
	require.True(t, d.inTxn())
	require.Nil(t, handle(commit(0x0f00, 0x0f80)), "a stored transaction decodes into nothing")
	require.False(t, d.inTxn())
	require.Nil(t, handle(message(0x0f90)), "a non-transactional message before the position")
	require.Nil(t, handle(begin(0x1000)))
	tx := handle(commit(0x1000, 0x1080))
	require.NotNil(t, tx, "the first transaction after the position")
	require.Equal(t, pglogrepl.LSN(0x1080), tx.endLSN)
}

func be64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
