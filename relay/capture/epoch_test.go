package capture

import (
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestSourceKeys: epoch 0 keeps the keys of before epochs existed (so replays across the upgrade
// dedupe); epoch N > 0 prefixes every kind with "e<N>:".
func TestSourceKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		keys                         sourceKeys
		wal, old, msg, alone, outbox string
	}{
		{sourceKeys{}, "wal:0000000100000028:3:contact.created", "wal:0000000100000028:3:contact.created:old",
			"wal:0000000100000028:2:invoice.paid", "wal:0000000100000028:m:invoice.paid", "outbox:42"},
		{sourceKeys{epoch: 1}, "e1:wal:0000000100000028:3:contact.created", "e1:wal:0000000100000028:3:contact.created:old",
			"e1:wal:0000000100000028:2:invoice.paid", "e1:wal:0000000100000028:m:invoice.paid", "e1:outbox:42"},
		{sourceKeys{epoch: 12}, "e12:wal:0000000100000028:3:contact.created", "e12:wal:0000000100000028:3:contact.created:old",
			"e12:wal:0000000100000028:2:invoice.paid", "e12:wal:0000000100000028:m:invoice.paid", "e12:outbox:42"},
	} {
		require.Equal(t, tc.wal, tc.keys.wal(0x1_0000_0028, 3, "contact.created", ""))
		require.Equal(t, tc.old, tc.keys.wal(0x1_0000_0028, 3, "contact.created", ":old"))
		require.Equal(t, tc.msg, tc.keys.message(0x1_0000_0028, 2, false, "invoice.paid"))
		require.Equal(t, tc.alone, tc.keys.message(0x1_0000_0028, 2, true, "invoice.paid"))
		require.Equal(t, tc.outbox, tc.keys.outbox(42))
	}
}

// TestEpochReason: when a session starts a new source epoch, and when not.
func TestEpochReason(t *testing.T) {
	t.Parallel()
	sys := pglogrepl.IdentifySystemResult{SystemID: "7100", XLogPos: 0x5_0000_0000}
	for name, tc := range map[string]struct {
		pos     store.CapturePosition
		missing bool
		want    string
	}{
		"same cluster, slot there: a restart":        {pos: store.CapturePosition{SystemID: "7100", LSN: 0x4_0000_0000}, want: ""},
		"same cluster, nothing stored, slot created": {pos: store.CapturePosition{SystemID: "7100"}, missing: true, want: ""},
		"unknown cluster (slot recreate's row)":      {pos: store.CapturePosition{Epoch: 1}, want: ""},
		"unknown cluster, slot created":              {pos: store.CapturePosition{Epoch: 1}, missing: true, want: ""},
		"another cluster":                            {pos: store.CapturePosition{SystemID: "7200", LSN: 0x4_0000_0000}, want: epochOtherCluster},
		"another cluster, slot missing":              {pos: store.CapturePosition{SystemID: "7200", LSN: 0x4_0000_0000}, missing: true, want: epochOtherCluster},
		"slot missing while a position is stored":    {pos: store.CapturePosition{SystemID: "7100", LSN: 0x4_0000_0000}, missing: true, want: epochSlotMissing},
		"position beyond the source's WAL":           {pos: store.CapturePosition{SystemID: "7100", LSN: 0x6_0000_0000}, want: epochRewound},
		"position at the source's WAL end":           {pos: store.CapturePosition{SystemID: "7100", LSN: 0x5_0000_0000}, want: ""},
	} {
		require.Equal(t, tc.want, epochReason(tc.pos, sys, tc.missing), name)
	}
}

// waitAcked waits until the slot has confirmed everything stored (so a new session replays
// nothing already stored).
func (f *fixture) waitAcked(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	pos, err := f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := f.src.CaptureSlotStatus(ctx, f.slot)
		if err != nil || s.ConfirmedFlushLSN == "" {
			return false
		}
		c, err := pglogrepl.ParseLSN(s.ConfirmedFlushLSN)
		return err == nil && uint64(c) >= pos.LSN
	}, 20*time.Second, 20*time.Millisecond)
}

// waitInactive waits until no walsender reads the slot (after a stop).
func (f *fixture) waitInactive(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := f.src.CaptureSlotStatus(t.Context(), f.slot)
		return err == nil && !s.Active
	}, 10*time.Second, 10*time.Millisecond)
}

// captureOutboxRow writes one outbox row and one table row, waits for their events and for the
// outbox row's delete, and returns the outbox row's id.
func (f *fixture) captureOutboxRow(t *testing.T, n int) int64 {
	t.Helper()
	ctx := t.Context()
	before := f.count(t, "SELECT count(*) FROM walhook.event")
	var id int64
	require.NoError(t, f.app.QueryRow(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ('1', 'invoice.paid', jsonb_build_object('n', $1::int)) RETURNING id`, n).Scan(&id))
	_, err := f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'c' || $1::int)`, n)
	require.NoError(t, err)
	f.waitEvents(t, before+2)
	f.waitOutboxEmpty(t)
	return id
}

// firstSession runs one capture session of f.config() in epoch 0: it captures outbox row n = 1 and a
// table row (captureOutboxRow), and stops once the slot has confirmed them and no walsender reads
// it. It returns the outbox row's id, for the tests of what a later session does with it.
func (f *fixture) firstSession(t *testing.T) int64 {
	t.Helper()
	stop := f.startStreaming(t, f.config(), nil)
	id := f.captureOutboxRow(t, 1)
	f.waitAcked(t)
	stop()
	f.waitInactive(t)
	return id
}

// putBackOutboxRow inserts an outbox row with a given id, as a restored or reset application
// database whose ids start over would.
func (f *fixture) putBackOutboxRow(t *testing.T, id int64, n int) {
	t.Helper()
	_, err := f.app.Exec(t.Context(), `INSERT INTO walhook.outbox (id, company_id, event_key, payload) OVERRIDING SYSTEM VALUE
		VALUES ($1, '1', 'invoice.paid', jsonb_build_object('n', $2::int))`, id, n)
	require.NoError(t, err)
}

// leaveOutboxRow puts back an outbox row whose event is stored (key: its source key) as a crash
// before its delete would have left it: the same id, payload and created_at (its event's time).
func (f *fixture) leaveOutboxRow(t *testing.T, id int64, key string) {
	t.Helper()
	var n int
	var at time.Time
	require.NoError(t, f.pool.QueryRow(t.Context(), `SELECT (payload->'data'->>'n')::int, occurred_at FROM walhook.event WHERE source_key = $1`, key).Scan(&n, &at))
	_, err := f.app.Exec(t.Context(), `INSERT INTO walhook.outbox (id, company_id, event_key, payload, created_at) OVERRIDING SYSTEM VALUE
		VALUES ($1, '1', 'invoice.paid', jsonb_build_object('n', $2::int), $3)`, id, n, at)
	require.NoError(t, err)
}

// eventByKey is an event's payload n and envelope id by source key ("" when there is none).
func (f *fixture) eventByKey(t *testing.T, key string) (n, envelopeID string) {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `SELECT payload->'data'->>'n', payload->>'id' FROM walhook.event WHERE source_key = $1`, key)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		require.NoError(t, rows.Scan(&n, &envelopeID))
	}
	require.NoError(t, rows.Err())
	return n, envelopeID
}

// TestEpochAnotherCluster: the stored position names another cluster (the source restored into,
// or replaced by, a new one). The next session starts epoch 1: an outbox row whose id an earlier
// event has is delivered as a new event (not dropped as a replay), the earlier event stays as it
// was, and table writes from then on carry the epoch too.
func TestEpochAnotherCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	id := f.firstSession(t)
	oldN, oldID := f.eventByKey(t, "outbox:"+itoa(id))
	require.Equal(t, "1", oldN)
	pos, err := f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	require.Equal(t, 0, pos.Epoch)
	// As if walhook's database had last read another cluster.
	_, err = f.pool.Exec(ctx, `UPDATE walhook.capture_position SET system_id = '7000000000000000001' WHERE slot = $1`, f.slot)
	require.NoError(t, err)
	f.putBackOutboxRow(t, id, 2)

	reg := prometheus.NewRegistry()
	f.start(t, f.config(), reg, nil)
	f.waitEvents(t, 3)
	f.waitOutboxEmpty(t)
	newN, newID := f.eventByKey(t, "e1:outbox:"+itoa(id))
	require.Equal(t, "2", newN, "the repeated id is a new event: %s", f.outboxDump(t))
	require.NotEqual(t, oldID, newID, "with an envelope id of its own")
	n, envID := f.eventByKey(t, "outbox:"+itoa(id))
	require.Equal(t, [2]string{"1", oldID}, [2]string{n, envID}, "the earlier event is untouched")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id WHERE e.source_key = $1`, "e1:outbox:"+itoa(id)))

	pos, err = f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	require.Equal(t, 1, pos.Epoch)
	require.Equal(t, epochOtherCluster, pos.EpochReason)
	require.Equal(t, f.sourceSystem(t), pos.SystemID)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_epochs_total", epochOtherCluster), 0)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_source_epoch"), 0)

	f.waitStreaming(t)
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'after')`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'after' AND source_key LIKE 'e1:wal:%'`) == 1
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 4, f.count(t, "SELECT count(*) FROM walhook.event"), "nothing of the first session read again")
}

// TestEpochSlotMissing: the slot is gone while a position is stored (slots are not in backups: a
// restored source comes back without it). The session that creates it starts epoch 1, and an
// outbox row with a repeated id is delivered. Then the same cluster again: restarts keep epoch 1,
// and replays still dedupe, of the outbox (rows put back) and of the WAL (the stored position
// forgotten and the slot never acknowledged, so every transaction of epoch 1 is streamed again).
func TestEpochSlotMissing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	id := f.firstSession(t)
	require.NoError(t, f.src.CaptureSlotDrop(ctx, f.slot))
	f.putBackOutboxRow(t, id, 2)

	cfg := f.config()
	cfg.StatusInterval = time.Hour // from here on the slot is never acknowledged
	reg := prometheus.NewRegistry()
	stop := f.startStreaming(t, cfg, reg)
	f.waitEvents(t, 3)
	n, _ := f.eventByKey(t, "e1:outbox:"+itoa(id))
	require.Equal(t, "2", n, "the repeated id is a new event: %s", f.outboxDump(t))
	n, _ = f.eventByKey(t, "outbox:"+itoa(id))
	require.Equal(t, "1", n, "the earlier event is untouched")
	pos, err := f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	require.Equal(t, 1, pos.Epoch)
	require.Equal(t, epochSlotMissing, pos.EpochReason)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_epochs_total", epochSlotMissing), 0)
	id2 := f.captureOutboxRow(t, 3)
	require.Equal(t, 5, f.count(t, "SELECT count(*) FROM walhook.event"))
	require.Equal(t, 3, f.count(t, "SELECT count(*) FROM walhook.event WHERE source_key LIKE 'e1:%'"))
	stop()
	f.waitInactive(t)
	s, err := f.src.CaptureSlotStatus(ctx, f.slot)
	require.NoError(t, err)
	confirmed, err := pglogrepl.ParseLSN(s.ConfirmedFlushLSN)
	require.NoError(t, err)
	pos, err = f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	require.Less(t, uint64(confirmed), pos.LSN, "the slot was not acknowledged: epoch 1's transactions are streamed again")

	// The same cluster, its slot there: a restart. Rows put back with their ids (a crash before
	// their delete) and the WAL read again dedupe in epoch 1.
	_, err = f.pool.Exec(ctx, `UPDATE walhook.capture_position SET lsn = '0/0' WHERE slot = $1`, f.slot)
	require.NoError(t, err)
	f.leaveOutboxRow(t, id2, "e1:outbox:"+itoa(id2))
	reg = prometheus.NewRegistry()
	f.startStreaming(t, cfg, reg)
	f.waitOutboxEmpty(t)
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'last')`)
	require.NoError(t, err)
	f.waitEvents(t, 6)
	require.Eventually(t, func() bool {
		pos, err := f.st.CapturePositionGet(ctx, f.slot)
		return err == nil && pos.LSN > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 6, f.count(t, "SELECT count(*) FROM walhook.event"), "nothing stored twice")
	require.Equal(t, 4, f.count(t, "SELECT count(*) FROM walhook.event WHERE source_key LIKE 'e1:%'"))
	pos, err = f.st.CapturePositionGet(ctx, f.slot)
	require.NoError(t, err)
	require.Equal(t, 1, pos.Epoch, "a restart keeps the epoch")
	require.InDelta(t, 0, xtest.Sample(t, reg, "walhook_capture_epochs_total", epochSlotMissing), 0)
	require.InDelta(t, 0, xtest.Sample(t, reg, "walhook_capture_epochs_total", epochOtherCluster), 0)
	require.InDelta(t, 0, xtest.Sample(t, reg, "walhook_capture_epochs_total", epochRewound), 0)
	require.GreaterOrEqual(t, xtest.Sample(t, reg, "walhook_capture_transactions_total"), float64(2),
		"transactions of epoch 1 were streamed again (and deduped), and the last one")
}

// TestEpochPollMode: poll mode reads no replication session, but uses the epoch stored for its
// slot: after one was started (here as `walhook slot recreate` does), an outbox row with a
// repeated id is delivered.
func TestEpochPollMode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	cfg.Mode = store.CapturePoll
	stop := f.start(t, cfg, nil, nil)
	_, err := f.app.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ('1', 'invoice.paid', '{"n": 1}')`)
	require.NoError(t, err)
	f.waitEvents(t, 1)
	var key string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT source_key FROM walhook.event`).Scan(&key))
	require.Regexp(t, `^outbox:\d+$`, key, "epoch 0: the keys of before")
	// with two databases the row is deleted in the source after the event is committed
	f.waitOutboxEmpty(t)
	stop()

	_, bumped, err := f.st.CaptureEpochBump(ctx, f.slot, 0, "", EpochSlotRecreate)
	require.NoError(t, err)
	require.True(t, bumped)
	_, err = f.app.Exec(ctx, `INSERT INTO walhook.outbox (id, company_id, event_key, payload) OVERRIDING SYSTEM VALUE
		SELECT substr($1, 8)::bigint, '1', 'invoice.paid', '{"n": 2}'`, key)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	f.start(t, cfg, reg, nil)
	f.waitEvents(t, 2)
	n, _ := f.eventByKey(t, "e1:"+key)
	require.Equal(t, "2", n)
	n, _ = f.eventByKey(t, key)
	require.Equal(t, "1", n)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_source_epoch"), 0)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
