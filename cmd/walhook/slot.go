package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/walhook/walhook/relay/capture"
	"github.com/walhook/walhook/relay/store"
)

// runSlot is `walhook slot status|drop|recreate|epoch`: the operator's view of capture's
// replication slot, the recovery from a slot PostgreSQL invalidated (docs/operations.md, "Slot
// lag and WAL growth"), and a new source epoch by hand (poll mode, after the application's
// database was restored).
func runSlot(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "Usage: walhook slot status|drop|recreate|epoch [flags]\n\n" +
		"status    shows the replication slot: active, positions, lag, wal_status, safe_wal_size\n" +
		"drop      drops it (with --yes; stop every relay first). The next start creates a new slot\n" +
		"          at the current position: changes written in between are not captured.\n" +
		"recreate  drops it and creates a new one at the current position (with --yes): the recovery\n" +
		"          from wal_status lost. A running relay resumes capture on the new slot by itself.\n" +
		"epoch     starts a new source epoch (with --yes), in walhook's database only: for poll mode,\n" +
		"          after the application's database was restored or reset (WAL mode does it itself).\n\n" +
		"The slot is in the application's database: --source-database-url when walhook keeps its own\n" +
		"database apart, else --database-url. recreate also starts a new source epoch in walhook's\n" +
		"database (walhook.capture_position): the events captured from then on get new source keys,\n" +
		"so none is taken for a replay of an earlier one. After drop, capture starts one when it\n" +
		"creates the slot."
	var common commonConfig
	var slot string
	var yes bool
	fs := common.sourceToolFlags("slot")
	fs.StringVar(&slot, "slot", "walhook", "logical replication slot name")
	fs.BoolVar(&yes, "yes", false, "drop, recreate: really drop the slot; epoch: really start a new source epoch")
	if err := parseFlags(fs, args, synopsis); err != nil {
		return err
	}
	sub := fs.Arg(0)
	if fs.NArg() != 1 || (sub != "status" && sub != "drop" && sub != "recreate" && sub != "epoch") {
		return usageError(synopsis, errors.New("want slot status, slot drop, slot recreate or slot epoch"))
	}
	wh, pool, err := common.openTool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// A database `walhook split` moved is the application's only: the epoch and the position
	// live in walhook's database now (an epoch started here would never reach capture).
	if err := wh.MovedCheck(ctx); err != nil {
		return err
	}
	if sub == "epoch" {
		if !yes {
			return errors.New("a new source epoch makes every outbox row still in the outbox, if walhook captured it before, deliver again; " +
				"it is for an application database restored or reset (docs/operations.md, \"After a restore of either database\"); add --yes")
		}
		if err := newEpoch(ctx, wh, slot, capture.EpochManual, stdout); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, "Poll mode uses it from its next claim; a WAL-mode capture leader from its next replication session.")
		return err
	}
	// st is the application's database, where the slot is; wh is walhook's, where its position is.
	st, closeSrc, err := common.openToolSource(ctx, wh)
	if err != nil {
		return err
	}
	defer closeSrc()
	// The slot is where walhook's database says capture reads: a slot made in the wrong
	// database would be read by no relay, and its new epoch would be for nothing.
	if err := wh.CaptureSourceCheck(ctx, st != wh); err != nil {
		return err
	}
	s, err := st.CaptureSlotStatus(ctx, slot)
	if errors.Is(err, store.ErrNotFound) && sub == "recreate" {
		if err := newEpoch(ctx, wh, slot, capture.EpochSlotRecreate, stdout); err != nil {
			return err
		}
		return createSlot(ctx, st, slot, nil, stdout)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no replication slot %q", slot)
	}
	if err != nil {
		return fmt.Errorf("read slot %s: %w", slot, err)
	}
	switch sub {
	case "status":
		pid := "-"
		if s.ActivePID != nil {
			pid = fmt.Sprint(*s.ActivePID)
		}
		safe := "unlimited (max_slot_wal_keep_size = -1)"
		switch {
		case s.WALStatus == store.SlotWALLost:
			safe = "- (lost)"
		case s.SafeWALSize != nil:
			safe = fmt.Sprint(*s.SafeWALSize)
		}
		_, err := fmt.Fprintf(stdout, "slot            %s\nplugin          %s (%s)\ndatabase        %s\nactive          %t (pid %s)\n"+
			"restart_lsn     %s\nconfirmed_flush %s\ncurrent_lsn     %s\nlag_bytes       %d\nwal_status      %s\nsafe_wal_size   %s\n",
			s.Name, s.Plugin, s.Type, s.Database, s.Active, pid, s.RestartLSN, s.ConfirmedFlushLSN, s.CurrentLSN, s.LagBytes, s.WALStatus, safe)
		if err == nil {
			err = printEpoch(ctx, wh, slot, stdout)
		}
		if err == nil && s.WALStatus == store.SlotWALLost {
			_, err = fmt.Fprintf(stdout, "\nThe slot is lost: PostgreSQL invalidated it (max_slot_wal_keep_size) and capture cannot resume on it.\n"+
				"Recover with: walhook slot recreate --slot %s --yes\n", slot)
		}
		return err
	case "drop":
		if !yes {
			return errors.New("dropping the slot loses the changes not yet captured; add --yes")
		}
		if s.Active {
			return fmt.Errorf("slot %s is in use: stop every relay first", slot)
		}
		if err := st.CaptureSlotDrop(ctx, slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
		// The stored position stays: capture, finding the slot gone while a position is
		// stored, starts a new source epoch when it creates the slot (relay/capture/epoch.go).
		_, err := fmt.Fprintf(stdout, "dropped replication slot %s\n", slot)
		return err
	default:
		if !yes {
			if s.WALStatus == store.SlotWALLost {
				return errors.New("recreating the slot starts capture at the current position: changes since the slot was invalidated are not captured; add --yes")
			}
			return fmt.Errorf("slot %s is not lost (wal_status %s): recreating it loses the %d bytes of changes not yet captured; add --yes if you mean it", slot, s.WALStatus, s.LagBytes)
		}
		if s.Active {
			return fmt.Errorf("slot %s is in use by pid %d (wal_status %s): a lost slot cannot stream, so this one is healthy; stop every relay first if you really want a new one", slot, derefPID(s.ActivePID), s.WALStatus)
		}
		if err := st.CaptureSlotDrop(ctx, slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
		if err := newEpoch(ctx, wh, slot, capture.EpochSlotRecreate, stdout); err != nil {
			return err
		}
		return createSlot(ctx, st, slot, &s, stdout)
	}
}

// createSlot creates capture's slot at the current position and tells the operator what was not
// captured. old is the slot it replaces (nil: there was none).
func createSlot(ctx context.Context, st *store.Store, slot string, old *store.SlotStatus, stdout io.Writer) error {
	lsn, err := st.CaptureSlotCreate(ctx, slot)
	if errors.Is(err, store.ErrConflict) {
		// A running relay's capture leader creates a missing slot itself; it got there first.
		s, serr := st.CaptureSlotStatus(ctx, slot)
		if serr != nil {
			return fmt.Errorf("read slot %s: %w", slot, serr)
		}
		lsn = s.ConfirmedFlushLSN
		_, _ = fmt.Fprintf(stdout, "a running relay created replication slot %s meanwhile\n", slot)
	} else if err != nil {
		return fmt.Errorf("create slot %s: %w", slot, err)
	}
	var missed string
	switch {
	case old == nil:
		missed = fmt.Sprintf("There was no slot %s: changes committed before %s, since an earlier slot was dropped, were NOT captured", slot, lsn)
	case old.WALStatus == store.SlotWALLost && old.ConfirmedFlushLSN != "":
		missed = fmt.Sprintf("Changes committed between the lost slot's last confirmed position %s and %s were NOT captured", old.ConfirmedFlushLSN, lsn)
	case old.WALStatus == store.SlotWALLost:
		missed = fmt.Sprintf("Changes committed since the lost slot's last confirmed position, up to %s, were NOT captured", lsn)
	default:
		missed = fmt.Sprintf("Changes committed between position %s and %s were NOT captured", old.ConfirmedFlushLSN, lsn)
	}
	_, err = fmt.Fprintf(stdout, "created replication slot %s at %s\n\n"+
		"%s: no events, no deliveries.\n"+
		"Re-emit the ones that matter from the application (walhook.emit or walhook.outbox).\n"+
		"Outbox rows still in walhook.outbox are not lost: capture sweeps them when its stream starts.\n"+
		"A running relay's capture leader resumes on the new slot within seconds; otherwise start one.\n",
		slot, lsn, missed)
	return err
}

// newEpoch starts a new source epoch for slot in walhook's database: the stored position is
// forgotten, and the events captured from then on get source keys no earlier event has (see
// "Source epochs" in relay/capture/doc.go). recreate calls it before the new slot is created (a
// failure in between leaves an epoch with nothing captured in it, never a new slot in the old
// epoch); an operator recreates a slot after something went wrong with the source, so the epoch
// is started whatever capture would decide.
func newEpoch(ctx context.Context, wh *store.Store, slot, reason string, stdout io.Writer) error {
	pos, err := wh.CapturePositionGet(ctx, slot)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read the stored position of slot %s: %w", slot, err)
	}
	for range 3 { // another caller may start one between the read and the bump
		var bumped bool
		pos, bumped, err = wh.CaptureEpochBump(ctx, slot, pos.Epoch, "", reason)
		if err != nil {
			return err
		}
		if bumped {
			_, err = fmt.Fprintf(stdout, "started source epoch %d for slot %s: events captured from now on have source keys starting with e%d:\n",
				pos.Epoch, slot, pos.Epoch)
			return err
		}
	}
	return fmt.Errorf("start a source epoch for slot %s: the stored epoch keeps changing (is a relay running?)", slot)
}

// printEpoch shows the slot's source epoch as stored in walhook's database.
func printEpoch(ctx context.Context, wh *store.Store, slot string, stdout io.Writer) error {
	pos, err := wh.CapturePositionGet(ctx, slot)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, err = fmt.Fprintf(stdout, "source_epoch    0 (nothing stored yet)\n")
		return err
	case err != nil:
		return fmt.Errorf("read the stored position of slot %s: %w", slot, err)
	}
	since := ""
	if pos.EpochStarted != nil {
		since = fmt.Sprintf(" (since %s: %s)", pos.EpochStarted.UTC().Format(time.RFC3339), pos.EpochReason)
	}
	stored := "-"
	if pos.LSN > 0 {
		stored = pglogrepl.LSN(pos.LSN).String()
	}
	_, err = fmt.Fprintf(stdout, "source_epoch    %d%s\nstored_lsn      %s\n", pos.Epoch, since, stored)
	return err
}

func derefPID(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
