package capture

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pglogrepl"

	"github.com/walhook/walhook/relay/store"
)

// Why capture started a new source epoch (walhook_capture_epochs_total{reason}, and
// walhook.capture_position.epoch_reason); see "Source epochs" in doc.go.
const (
	// epochOtherCluster: the stored position names another PostgreSQL cluster (IDENTIFY_SYSTEM's
	// system identifier differs): the source was restored into, or replaced by, a new cluster.
	epochOtherCluster = "other_cluster"
	// epochSlotMissing: capture had to create the slot while a position for it was stored. Slots
	// are not in backups, so a restored source (pg_dump, a base backup, point-in-time recovery)
	// or one upgraded without its slots comes back without it.
	epochSlotMissing = "slot_missing"
	// epochRewound: the stored position is beyond the source's WAL: the source went back in time
	// (a disk snapshot restored with its slot, a failover to a standby that had not received
	// what capture had stored), and its next transactions reuse LSNs capture has stored keys of.
	epochRewound = "rewound"
	// EpochSlotRecreate: an operator ran `walhook slot recreate` (cmd/walhook records it).
	EpochSlotRecreate = "slot_recreate"
	// EpochManual: an operator ran `walhook slot epoch` (poll mode after a restore).
	EpochManual = "manual"
)

// sourceKeys builds the source keys of one source epoch: the one place the epoch is applied, for
// the stream's decoder, the stream-start outbox sweep and poll mode alike. Epoch 0 keeps the keys
// of before epochs existed ("wal:…", "outbox:…"), so replays across an upgrade still dedupe;
// epoch N > 0 prefixes them with "e<N>:".
type sourceKeys struct{ epoch int }

func (k sourceKeys) key(position string) string {
	if k.epoch == 0 {
		return position
	}
	return "e" + strconv.Itoa(k.epoch) + ":" + position
}

// wal is the key of a table change's event: the commit LSN, the change's ordinal in its
// transaction and the event key (suffix, when not "", is appended: ":old" for a row moved out).
func (k sourceKeys) wal(commit pglogrepl.LSN, ordinal int, event, suffix string) string {
	return k.key(fmt.Sprintf("wal:%016X:%d:%s%s", uint64(commit), ordinal, event, suffix))
}

// message is the key of a walhook.emit message's event: in a transaction, its commit LSN and
// ordinal; standing alone (non-transactional), its own LSN and "m".
func (k sourceKeys) message(lsn pglogrepl.LSN, ordinal int, standalone bool, event string) string {
	if standalone {
		return k.key(fmt.Sprintf("wal:%016X:m:%s", uint64(lsn), event))
	}
	return k.key(fmt.Sprintf("wal:%016X:%d:%s", uint64(lsn), ordinal, event))
}

// outbox is the key of an outbox row's event.
func (k sourceKeys) outbox(id int64) string {
	return k.key("outbox:" + strconv.FormatInt(id, 10))
}

// sourceEpoch decides, at the start of a replication session, whether the source is still the
// history capture has read through the slot, and starts a new epoch when it is not (see "Source
// epochs" in doc.go). sys is the source's IDENTIFY_SYSTEM; slotMissing says the slot is not
// there (prepare creates it after this returns: the new epoch is stored first, so a crash in
// between never leaves a new slot read in the old epoch). It returns the stored position
// afterwards (zero with no row: epoch 0, nothing stored).
func (c *Capture) sourceEpoch(ctx context.Context, sys pglogrepl.IdentifySystemResult, slotMissing bool) (store.CapturePosition, error) {
	pos, err := c.st.CapturePositionGet(ctx, c.cfg.Slot)
	if errors.Is(err, store.ErrNotFound) {
		c.setEpoch(0)
		return store.CapturePosition{Slot: c.cfg.Slot}, nil
	}
	if err != nil {
		return store.CapturePosition{}, fmt.Errorf("read stored capture position: %w", err)
	}
	reason := epochReason(pos, sys, slotMissing)
	if reason == "" {
		c.setEpoch(pos.Epoch)
		return pos, nil
	}
	was := pos
	pos, bumped, err := c.st.CaptureEpochBump(ctx, c.cfg.Slot, was.Epoch, sys.SystemID, reason)
	if err != nil {
		return store.CapturePosition{}, err
	}
	c.setEpoch(pos.Epoch)
	if bumped {
		if c.m != nil {
			c.m.epochs.WithLabelValues(reason).Inc()
		}
		c.log.Warn().Str("slot", c.cfg.Slot).Str("reason", reason).Int("epoch", pos.Epoch).Int("previous_epoch", was.Epoch).
			Str("stored_system_id", was.SystemID).Str("source_system_id", sys.SystemID).
			Str("stored_lsn", pglogrepl.LSN(was.LSN).String()).Str("source_wal_end", sys.XLogPos.String()).
			Bool("slot_missing", slotMissing).
			Msg("the application's database is not the one capture read before (restored, replaced or rewound): new source epoch, " +
				"its events get new source keys so none is taken for a replay of an earlier one; the stored position is ignored")
	}
	return pos, nil
}

// epochReason says why a session must start a new source epoch, "" when it must not: the same
// cluster (or one not yet known) with its slot and a position within its WAL is the same history
// (a restart, a failover to a standby with synced slots).
func epochReason(pos store.CapturePosition, sys pglogrepl.IdentifySystemResult, slotMissing bool) string {
	switch {
	case pos.SystemID != "" && pos.SystemID != sys.SystemID:
		return epochOtherCluster
	case slotMissing && pos.LSN > 0:
		return epochSlotMissing
	case pglogrepl.LSN(pos.LSN) > sys.XLogPos:
		return epochRewound
	}
	return ""
}

// storedEpoch is the slot's source epoch as stored (0 without a row), for poll mode, which has
// no session that could tell a new source (see "Source epochs" in doc.go).
func (c *Capture) storedEpoch(ctx context.Context) (sourceKeys, error) {
	pos, err := c.st.CapturePositionGet(ctx, c.cfg.Slot)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.setEpoch(0)
		return sourceKeys{}, nil
	case err != nil:
		return sourceKeys{}, fmt.Errorf("read the source epoch: %w", err)
	}
	c.setEpoch(pos.Epoch)
	return sourceKeys{epoch: pos.Epoch}, nil
}

func (c *Capture) setEpoch(epoch int) {
	if c.m != nil {
		c.m.epoch.Set(float64(epoch))
	}
}
