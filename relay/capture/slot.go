package capture

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/internal/lograte"
	"github.com/walhook/walhook/relay/internal/metric"
	"github.com/walhook/walhook/relay/store"
)

// A slot holds WAL on the application's primary until capture confirms it. With
// max_slot_wal_keep_size set (deploy/postgresql/walhook.conf), PostgreSQL gives up on a slot that
// falls too far behind instead of filling the disk: the slot's wal_status goes from reserved or
// extended to unreserved (the WAL beyond the cap goes at the next checkpoint) and then to lost
// (invalidated: it can never stream again). A lost slot cannot heal by itself — the changes in
// the removed WAL are gone — so capture does not try to: it says so plainly (an error log with
// what to do, walhook_replication_slot_wal_status{status="lost"}, /readyz), re-checks the slot
// every slotLostRetry without START_REPLICATION, and resumes by itself once an operator has
// recreated the slot (`walhook slot recreate`, docs/operations.md).

// slotLostRetry is how often capture re-reads a lost slot's status, waiting for the operator to
// recreate it. A lost slot is not an outage that ends by itself, so capture does not hammer
// the server; and the wait is short enough that a recreated slot streams within seconds.
const slotLostRetry = 5 * time.Second

// SlotLostError reports that PostgreSQL invalidated capture's replication slot: it fell behind
// by more than max_slot_wal_keep_size, the WAL it needed was removed, and it can no longer
// stream. Only an operator can resume capture, by recreating the slot.
type SlotLostError struct {
	Slot string
}

func (e *SlotLostError) Error() string {
	return fmt.Sprintf("replication slot %s is lost: PostgreSQL invalidated it (wal_status lost) because it fell behind by more than "+
		"max_slot_wal_keep_size, and the changes after its last confirmed position are no longer in the WAL; capture is stopped until "+
		"an operator runs `walhook slot recreate --slot %s --yes` (see docs/operations.md, \"Slot lag and WAL growth\")", e.Slot, e.Slot)
}

// slotWatch keeps the leader's view of the slot's WAL status for the metric, readiness and logs.
// A nil *slotWatch (a Capture built by hand in a test) records nothing; observe still reports a
// lost slot.
type slotWatch struct {
	slot   string
	status *prometheus.GaugeVec
	lost   atomic.Bool
	// unreserved and lostLogs limit their logs to one a minute: the state lasts, the logs need not.
	unreserved, lostLogs lograte.Limiter
}

func newSlotWatch(slot string, reg prometheus.Registerer) (*slotWatch, error) {
	b := metric.NewBuilder(reg)
	w := &slotWatch{slot: slot, unreserved: lograte.Limiter{Every: time.Minute}, lostLogs: lograte.Limiter{Every: time.Minute}, status: b.GaugeVec(metric.Opts{
		Name: "walhook_replication_slot_wal_status",
		Help: "1 for the capture slot's current pg_replication_slots.wal_status (reserved, extended, unreserved, lost), 0 for the others; all 0 off the leader. lost: PostgreSQL invalidated the slot and capture is stopped until `walhook slot recreate`.",
	}, "status")}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("register slot metrics: %w", err)
	}
	w.set("")
	return w, nil
}

// set makes state the one status at 1 ("" or an unknown state: all 0).
func (w *slotWatch) set(state string) {
	if w == nil {
		return
	}
	for _, s := range [...]string{store.SlotWALReserved, store.SlotWALExtended, store.SlotWALUnreserved, store.SlotWALLost} {
		v := 0.0
		if s == state {
			v = 1
		}
		w.status.WithLabelValues(s).Set(v)
	}
	w.lost.Store(state == store.SlotWALLost)
}

// observe records a status read from pg_replication_slots, warning when the slot is about to be
// lost, and returns a *SlotLostError when it is lost.
func (w *slotWatch) observe(s store.SlotStatus, log zerolog.Logger) error {
	if w == nil {
		if s.WALStatus == store.SlotWALLost {
			return &SlotLostError{Slot: s.Name}
		}
		return nil
	}
	w.set(s.WALStatus)
	switch s.WALStatus {
	case store.SlotWALLost:
		return &SlotLostError{Slot: w.slot} // logged by lostLog, once a stream attempt met it
	case store.SlotWALUnreserved:
		e := log.Warn().Str("slot", w.slot).Int64("lag_bytes", s.LagBytes)
		if s.SafeWALSize != nil {
			e = e.Int64("safe_wal_size", *s.SafeWALSize)
		}
		w.unreserved.Msg(e, "replication slot is beyond max_slot_wal_keep_size: PostgreSQL invalidates it at the next checkpoint unless capture catches up")
	}
	return nil
}

// lostLog logs, at most once a minute, that capture stopped on a lost slot, and what to do.
func (w *slotWatch) lostLog(err *SlotLostError, log zerolog.Logger) {
	if w == nil {
		log.Error().Err(err).Msg("replication slot lost: capture is stopped; recreate the slot with `walhook slot recreate --yes`")
		return
	}
	w.lostLogs.Msg(log.Error().Err(err).Str("slot", w.slot).Dur("recheck_in", slotLostRetry),
		"replication slot lost: capture is stopped; recreate the slot with `walhook slot recreate --yes`")
}

// check returns a *SlotLostError while the last status read found the slot lost.
func (w *slotWatch) check() error {
	if w != nil && w.lost.Load() {
		return &SlotLostError{Slot: w.slot}
	}
	return nil
}
