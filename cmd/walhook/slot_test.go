package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
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
	ctx := xtest.Context(t)
	db := xtest.DatabaseURL(t)
	pool, err := pgxpool.New(ctx, db)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool, nil)
	// Slots belong to the cluster, which the package's tests share: a name of this process's own.
	slot := fmt.Sprintf("slot_test_%d", os.Getpid())
	t.Cleanup(func() { _ = st.CaptureSlotDrop(ctx, slot) })
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runSlot(ctx, append(args, "--database-url", db, "--slot", slot, "--log-format", "json"), &out)
		return out.String(), err
	}

	_, err = run("status")
	require.EqualError(t, err, fmt.Sprintf("no replication slot %q", slot))
	out, err := run("recreate", "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "created replication slot "+slot+" at ")
	require.Contains(t, out, "There was no slot "+slot+": changes committed before ")

	out, err = run("status")
	require.NoError(t, err)
	require.Contains(t, out, "wal_status      reserved\n")
	require.Contains(t, out, "safe_wal_size   unlimited (max_slot_wal_keep_size = -1)\n")
	before, err := st.CaptureSlotStatus(ctx, slot)
	require.NoError(t, err)

	_, err = run("recreate")
	require.ErrorContains(t, err, "slot "+slot+" is not lost (wal_status reserved): recreating it loses the")
	_, err = run("remake", "--yes")
	require.EqualError(t, err, "want slot status, slot drop or slot recreate")

	_, err = pool.Exec(ctx, `SELECT pg_logical_emit_message(true, 'test', 'move the WAL on')`)
	require.NoError(t, err)
	out, err = run("recreate", "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "Changes committed between position "+before.ConfirmedFlushLSN+" and ")
	require.Contains(t, out, "were NOT captured")
	require.Contains(t, out, "Outbox rows still in walhook.outbox are not lost")
	after, err := st.CaptureSlotStatus(ctx, slot)
	require.NoError(t, err)
	require.NotEqual(t, before.ConfirmedFlushLSN, after.ConfirmedFlushLSN, "a new slot, at the current position")
}
