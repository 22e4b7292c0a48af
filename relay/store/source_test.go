package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestSourceMigrationsOverMainMigrated applies the source set to a database the main set
// migrated (one database moving to two): it applies, again is a no-op, and changes no row and no
// definition that was there (the keys, the mode, unsigned_before, an outbox row, walhook.emit and
// its privileges); its down leaves the main set's objects alone.
func TestSourceMigrationsOverMainMigrated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, pool := xtest.Store(t)
	_, err := pool.Exec(ctx, `UPDATE walhook.capture_setting SET mode = 'poll';
		INSERT INTO walhook.outbox (company_id, event_key) VALUES ('1', 'kept')`)
	require.NoError(t, err)
	snapshot := func() string {
		t.Helper()
		var out string
		require.NoError(t, pool.QueryRow(ctx, `SELECT concat_ws(' | ',
			(SELECT string_agg(id || ':' || encode(ipad, 'hex'), ',' ORDER BY id) FROM walhook.emit_key),
			(SELECT mode || ' ' || coalesce(unsigned_before::text, 'null') FROM walhook.capture_setting),
			(SELECT string_agg(id || ' ' || event_key, ',' ORDER BY id) FROM walhook.outbox),
			pg_get_functiondef('walhook.emit(text, text, jsonb)'::regprocedure),
			(SELECT coalesce(proacl::text, 'default') FROM pg_proc WHERE oid = 'walhook.emit(text, text, jsonb)'::regprocedure),
			(SELECT coalesce(relacl::text, 'default') FROM pg_class WHERE oid = 'walhook.emit_key'::regclass),
			(SELECT count(*) FROM pg_trigger WHERE tgrelid = 'walhook.outbox'::regclass AND NOT tgisinternal))`).Scan(&out))
		return out
	}
	before := snapshot()
	require.Contains(t, before, "poll ")

	applied, err := s.MigrateSourceUp(ctx)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, applied)
	require.Equal(t, before, snapshot(), "the source set changes nothing the main set made")
	applied, err = s.MigrateSourceUp(ctx)
	require.NoError(t, err)
	require.Empty(t, applied, "up is idempotent")
	sts, err := s.SourceMigrationStatuses(ctx)
	require.NoError(t, err)
	require.Len(t, sts, 2)
	require.Equal(t, "capture", sts[0].Name)
	require.Equal(t, "moved", sts[1].Name)
	require.NotNil(t, sts[0].AppliedAt)
	require.NotNil(t, sts[1].AppliedAt)

	reverted, err := s.MigrateSourceDown(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []int{2, 1}, reverted)
	require.Equal(t, before, snapshot(), "down leaves the main set's objects alone")
	require.NoError(t, s.MigrationCheck(ctx))
}

// TestSourceMigrationsFresh: on a database of its own the source set creates what capture and
// walhook.emit need, and nothing of walhook's database; walhook.emit signs with the key it
// made; down removes it all; a newer source schema is refused like a newer main one.
func TestSourceMigrationsFresh(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := xtest.SourceStore(t, xtest.SeparateSourceURL(t))
	pool := src.Pool()
	tables := func() []string {
		t.Helper()
		var names []string
		require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(array_agg(tablename::text ORDER BY tablename), '{}') FROM pg_tables WHERE schemaname = 'walhook'`).Scan(&names))
		return names
	}
	require.Equal(t, []string{"capture_setting", "emit_key", "outbox", "source_schema_migration"}, tables())
	keys, unsignedBefore, err := src.EmitKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Empty(t, unsignedBefore, "a new source never had the unsigned walhook.emit")
	var lsn string
	require.NoError(t, pool.QueryRow(ctx, `SELECT walhook.emit('1', 'x', '{}')::text`).Scan(&lsn))
	require.NotEmpty(t, lsn, "wal mode: a logical message")
	require.NoError(t, src.CaptureModeSet(ctx, store.CapturePoll))
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(walhook.emit('1', 'x', '{}')::text, 'null')`).Scan(&lsn))
	require.Equal(t, "null", lsn, "poll mode: an outbox row")
	rows, err := src.OutboxClaim(ctx, 10, 0)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	gone, err := src.OutboxDelete(ctx, []int64{rows[0].ID, rows[0].ID + 1000})
	require.NoError(t, err)
	require.Equal(t, []int64{rows[0].ID}, gone, "only the rows found")
	gone, err = src.OutboxDelete(ctx, []int64{rows[0].ID})
	require.NoError(t, err)
	require.Empty(t, gone, "idempotent")

	reverted, err := src.MigrateSourceDown(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []int{2, 1}, reverted)
	require.Equal(t, []string{"source_schema_migration"}, tables())

	_, err = pool.Exec(ctx, "INSERT INTO walhook.source_schema_migration (version, name) VALUES (99, 'from_a_newer_walhook')")
	require.NoError(t, err)
	_, err = src.MigrateSourceUp(ctx)
	var newer *store.SchemaNewerError
	require.ErrorAs(t, err, &newer)
	require.Equal(t, []int{99}, newer.Unknown)
	require.ErrorContains(t, err, "the source database schema is newer than this walhook")
	require.ErrorAs(t, src.SourceMigrationCheck(ctx), &newer)
	require.NoError(t, src.MigrationCheck(ctx), "the main set is not in this database: nothing newer")
}

// TestCapturePosition: CaptureCommit stores the position with the batch, never moves it back for
// the same source cluster, replaces it for another, and stores nothing without an LSN.
func TestCapturePosition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := xtest.Store(t)
	commit := func(pos store.CapturePosition) {
		t.Helper()
		_, err := s.CaptureCommit(ctx, store.CaptureBatch{Position: pos})
		require.NoError(t, err)
	}
	get := func(slot string) store.CapturePosition {
		t.Helper()
		p, err := s.CapturePositionGet(ctx, slot)
		require.NoError(t, err)
		return p
	}
	commit(store.CapturePosition{Slot: "a", SystemID: "100", LSN: 0x1_0000_0200})
	require.Equal(t, store.CapturePosition{Slot: "a", SystemID: "100", LSN: 0x1_0000_0200}, get("a"))
	commit(store.CapturePosition{Slot: "a", SystemID: "100", LSN: 0x1_0000_0100})
	require.Equal(t, uint64(0x1_0000_0200), get("a").LSN, "never moved back")
	commit(store.CapturePosition{Slot: "a", SystemID: "100", LSN: 0x2_0000_0000})
	require.Equal(t, uint64(0x2_0000_0000), get("a").LSN)
	commit(store.CapturePosition{Slot: "a", SystemID: "200", LSN: 0x10})
	require.Equal(t, store.CapturePosition{Slot: "a", SystemID: "200", LSN: 0x10}, get("a"), "another cluster's position replaces it")
	commit(store.CapturePosition{Slot: "b", SystemID: "100"})
	_, err := s.CapturePositionGet(ctx, "b")
	require.ErrorIs(t, err, store.ErrNotFound, "no LSN, no position")
}

// TestCaptureEpochBump: a bump starts epoch 1 on a slot without a row, then epoch + 1 with the
// position forgotten and the system id recorded ("" keeps it); only one of two callers that read
// the same epoch bumps; a position committed under an earlier epoch moves nothing, one under the
// stored epoch moves it.
func TestCaptureEpochBump(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := xtest.Store(t)
	pos, bumped, err := s.CaptureEpochBump(ctx, "fresh", 0, "", "slot_recreate")
	require.NoError(t, err)
	require.True(t, bumped)
	require.Equal(t, 1, pos.Epoch)
	require.Equal(t, "", pos.SystemID, "unknown")
	require.Equal(t, uint64(0), pos.LSN)
	require.Equal(t, "slot_recreate", pos.EpochReason)
	require.NotNil(t, pos.EpochStarted)

	_, err = s.CaptureCommit(ctx, store.CaptureBatch{Position: store.CapturePosition{Slot: "a", SystemID: "100", LSN: 0x1_0000_0200}})
	require.NoError(t, err)
	pos, err = s.CapturePositionGet(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, 0, pos.Epoch, "a position stored before any bump is epoch 0")
	require.Equal(t, "", pos.EpochReason)
	require.Nil(t, pos.EpochStarted)

	pos, bumped, err = s.CaptureEpochBump(ctx, "a", 0, "200", "other_cluster")
	require.NoError(t, err)
	require.True(t, bumped)
	require.Equal(t, 1, pos.Epoch)
	require.Equal(t, "200", pos.SystemID)
	require.Equal(t, uint64(0), pos.LSN, "the position is forgotten")
	require.Equal(t, "other_cluster", pos.EpochReason)

	pos, bumped, err = s.CaptureEpochBump(ctx, "a", 0, "300", "other_cluster")
	require.NoError(t, err)
	require.False(t, bumped, "another caller read epoch 0 too: one bump between them")
	require.Equal(t, 1, pos.Epoch)
	require.Equal(t, "200", pos.SystemID)

	// a session of epoch 0 still committing moves nothing; one of epoch 1 does
	_, err = s.CaptureCommit(ctx, store.CaptureBatch{Position: store.CapturePosition{Slot: "a", SystemID: "100", LSN: 0x5_0000_0000}})
	require.NoError(t, err)
	pos, err = s.CapturePositionGet(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, uint64(0), pos.LSN)
	require.Equal(t, "200", pos.SystemID)
	_, err = s.CaptureCommit(ctx, store.CaptureBatch{Position: store.CapturePosition{Slot: "a", SystemID: "200", LSN: 0x30, Epoch: 1}})
	require.NoError(t, err)
	pos, err = s.CapturePositionGet(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, uint64(0x30), pos.LSN)
	require.Equal(t, 1, pos.Epoch)

	pos, bumped, err = s.CaptureEpochBump(ctx, "a", 1, "", "slot_recreate")
	require.NoError(t, err)
	require.True(t, bumped)
	require.Equal(t, 2, pos.Epoch)
	require.Equal(t, "200", pos.SystemID, `"" keeps the stored system id`)
	require.Equal(t, uint64(0), pos.LSN)
}
