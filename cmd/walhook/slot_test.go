package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestSlotRecreate runs `walhook slot` on a healthy slot: status shows wal_status and
// safe_wal_size; recreate refuses without --yes (saying the slot is not lost and what would be
// lost), and with it drops and creates the slot at the current position, telling what was not
// captured; recreate with no slot at all creates one. (The lost-slot recovery end to end is
// internal/chaos TestSlotLostThenRecreated.)
func TestSlotRecreate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	pool := xtest.PoolOn(t, db)
	wh := store.New(pool, nil)
	// The slot is in the application's database (apart with WALHOOK_TEST_TWO_DATABASES=1).
	srcURL := xtest.SourceURL(t, db)
	st, _ := xtest.Source(t, wh, db)
	pool = st.Pool()
	// Slots belong to the cluster, which the package's tests share: a name of this process's own.
	slot := fmt.Sprintf("slot_test_%d", os.Getpid())
	t.Cleanup(func() { _ = st.CaptureSlotDrop(context.WithoutCancel(ctx), slot) })
	run := func(args ...string) (string, error) {
		args = append(args, "--slot", slot)
		if srcURL != db {
			args = append(args, "--source-database-url", srcURL)
		}
		return runOn(ctx, db, runSlot, args...)
	}

	_, err := run("status")
	require.EqualError(t, err, fmt.Sprintf("no replication slot %q", slot))
	out, err := run("recreate", "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "started source epoch 1 for slot "+slot+": events captured from now on have source keys starting with e1:\n")
	require.Contains(t, out, "created replication slot "+slot+" at ")
	require.Contains(t, out, "There was no slot "+slot+": changes committed before ")

	out, err = run("status")
	require.NoError(t, err)
	require.Contains(t, out, "wal_status      reserved\n")
	require.Contains(t, out, "safe_wal_size   unlimited (max_slot_wal_keep_size = -1)\n")
	require.Regexp(t, `\nsource_epoch    1 \(since \S+: slot_recreate\)\nstored_lsn      -\n`, out)
	before, err := st.CaptureSlotStatus(ctx, slot)
	require.NoError(t, err)

	_, err = run("recreate")
	require.ErrorContains(t, err, "slot "+slot+" is not lost (wal_status reserved): recreating it loses the")
	_, err = run("remake", "--yes")
	require.EqualError(t, err, "want slot status, slot drop, slot recreate or slot epoch")

	_, err = pool.Exec(ctx, `SELECT pg_logical_emit_message(true, 'test', 'move the WAL on')`)
	require.NoError(t, err)
	// capture stored a position for the slot in walhook's database (in epoch 1): recreate
	// starts epoch 2, which forgets it
	_, err = wh.CaptureCommit(ctx, store.CaptureBatch{Position: store.CapturePosition{Slot: slot, SystemID: "s", LSN: 1 << 32, Epoch: 1}})
	require.NoError(t, err)
	pos, err := wh.CapturePositionGet(ctx, slot)
	require.NoError(t, err)
	require.Equal(t, uint64(1<<32), pos.LSN)
	out, err = run("status")
	require.NoError(t, err)
	require.Contains(t, out, "\nstored_lsn      1/0\n")
	out, err = run("recreate", "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "started source epoch 2 for slot "+slot)
	require.Contains(t, out, "Changes committed between position "+before.ConfirmedFlushLSN+" and ")
	require.Contains(t, out, "were NOT captured")
	require.Contains(t, out, "Outbox rows still in walhook.outbox are not lost")
	after, err := st.CaptureSlotStatus(ctx, slot)
	require.NoError(t, err)
	require.NotEqual(t, before.ConfirmedFlushLSN, after.ConfirmedFlushLSN, "a new slot, at the current position")
	pos, err = wh.CapturePositionGet(ctx, slot)
	require.NoError(t, err)
	require.Equal(t, store.CapturePosition{Slot: slot, SystemID: "s", Epoch: 2, EpochReason: "slot_recreate", EpochStarted: pos.EpochStarted}, pos,
		"a new epoch; the stored position of the old slot is forgotten, the cluster kept")

	// drop leaves the epoch and the position alone: capture starts an epoch when it creates the
	// slot again (relay/capture TestEpochSlotMissing)
	_, err = wh.CaptureCommit(ctx, store.CaptureBatch{Position: store.CapturePosition{Slot: slot, SystemID: "s", LSN: 2 << 32, Epoch: 2}})
	require.NoError(t, err)
	out, err = run("drop", "--yes")
	require.NoError(t, err)
	require.Equal(t, "dropped replication slot "+slot+"\n", out)
	pos, err = wh.CapturePositionGet(ctx, slot)
	require.NoError(t, err)
	require.Equal(t, 2, pos.Epoch)
	require.Equal(t, uint64(2<<32), pos.LSN)

	// epoch, by hand (poll mode after a restore): only with --yes, walhook's database only
	_, err = run("epoch")
	require.ErrorContains(t, err, "add --yes")
	out, err = run("epoch", "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "started source epoch 3 for slot "+slot+": events captured from now on have source keys starting with e3:\n")
	pos, err = wh.CapturePositionGet(ctx, slot)
	require.NoError(t, err)
	require.Equal(t, 3, pos.Epoch)
	require.Equal(t, "manual", pos.EpochReason)
	require.Equal(t, uint64(0), pos.LSN)
}

// TestMigrateTwoDatabases runs `walhook migrate` with --source-database-url: status lists both
// sets under their database, down reverts steps of each, up applies both again.
func TestMigrateTwoDatabases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	src := xtest.SeparateSourceURL(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := runOn(ctx, db, runMigrate, append(args, "--source-database-url", src)...)
		require.NoError(t, err)
		return out
	}
	// walhook's database: its newest three migrations, whichever they are.
	all, err := store.Migrations()
	require.NoError(t, err)
	third, second, newest := all[len(all)-3], all[len(all)-2], all[len(all)-1]
	name := func(m store.Migration) string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

	out := run("status")
	require.Regexp(t, `(?s)^walhook database \(--database-url\):\n0001_init\s+applied .*\n`+name(newest)+`\s+applied [^\n]+\n\n`+
		`source database \(--source-database-url\):\n0001_capture\s+applied [^\n]+\n0002_moved\s+applied [^\n]+\n$`, out)

	out = run("down", "2")
	require.Equal(t, fmt.Sprintf("reverted 2 migration(s) [%d %d]\nsource database: reverted 2 migration(s) [2 1]\n", newest.Version, second.Version), out)
	out = run("status")
	require.Regexp(t, `\n`+name(third)+`\s+applied [^\n]+\n`+name(second)+`\s+pending\n`+name(newest)+`\s+pending\n`, out)
	require.Regexp(t, `\n0001_capture\s+pending\n0002_moved\s+pending\n$`, out)
	// the source set removed its objects from a database of its own
	pool := xtest.PoolOn(t, src)
	var outbox *string
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('walhook.outbox')::text`).Scan(&outbox))
	require.Nil(t, outbox)

	out = run("up")
	require.Equal(t, fmt.Sprintf("applied 2 migration(s) [%d %d]\nsource database: applied 2 migration(s) [1 2]\n", second.Version, newest.Version), out)
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('walhook.outbox')::text`).Scan(&outbox))
	require.Equal(t, "walhook.outbox", *outbox)
}

// TestSlotRefusesMovedDatabase: after walhook split, a slot command given the old database as
// walhook's (--database-url, as before the split) is refused: `slot epoch` would start the epoch
// in the old database, where no capture reads it, and the poller on walhook's database would go on
// taking restored outbox rows for replays.
func TestSlotRefusesMovedDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	pool := xtest.PoolOn(t, db)
	_, err := pool.Exec(ctx, `UPDATE walhook.capture_setting SET moved_at = now(), moved_to = 'postgres://walhook@new:5432/walhook'`)
	require.NoError(t, err)
	for _, sub := range []string{"epoch", "status", "drop", "recreate"} {
		err := runSlot(ctx, []string{sub, "--yes", "--database-url", db, "--slot", "moved_test", "--log-format", "json"}, io.Discard)
		require.ErrorIs(t, err, store.ErrMoved, sub)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM walhook.capture_position`).Scan(&n))
	require.Zero(t, n, "no epoch started in the moved database")
}
