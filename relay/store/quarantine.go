package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Quarantined is an event capture set aside because PostgreSQL refused its data
// (walhook.capture_quarantine).
type Quarantined struct {
	ID         int64
	SourceKey  string
	CompanyID  string
	EventKey   string
	Payload    []byte // the envelope as capture built it; empty in a listing
	PayloadLen int64
	OccurredAt *time.Time
	SQLState   string
	Reason     string
	FirstSeen  time.Time
	LastTried  time.Time
	Attempts   int32
}

// TooLargeError is an event capture did not render because it exceeded its cap
// (--capture-max-event-bytes). It is quarantined without its payload.
type TooLargeError struct {
	Size int // the event's size in bytes (a lower bound when it was not rendered)
	Max  int // the cap
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("too_large: event of %d bytes or more exceeds --capture-max-event-bytes %d; its payload was not kept", e.Size, e.Max)
}

// ErrPayloadNotKept: a quarantined event was set aside without its payload (too large), so it
// cannot be retried; the application has to send it again, smaller.
var ErrPayloadNotKept = errors.New("the event was quarantined without its payload (too large); it cannot be retried")

// CaptureQuarantineAdd sets e aside with the error that refused it. It reports false when e's
// source key is quarantined already (a replay). The text columns are cleaned (no NUL, valid
// UTF-8) and the payload is kept as bytes, so the insert cannot fail on e's data. An event set
// aside for its size (cause a *TooLargeError) has no payload: it is stored empty.
func (s *Store) CaptureQuarantineAdd(ctx context.Context, e CaptureEvent, cause error) (bool, error) {
	payload := e.Payload
	if payload == nil {
		payload = []byte{} // NOT NULL: an empty payload is one that was not kept
	}
	var at *time.Time
	if !e.OccurredAt.IsZero() {
		t := e.OccurredAt
		at = &t
	}
	var n int64
	// In its own transaction, or a savepoint of the caller's: should it fail, the caller's
	// transaction (a poller's claim) is not aborted with it.
	err := s.Tx(ctx, func(tx *Store) error {
		var err error
		n, err = tx.q.CaptureQuarantineAdd(ctx, dbsqlc.CaptureQuarantineAddParams{
			SourceKey: cleanText(e.SourceKey), CompanyID: cleanText(e.CompanyID), EventKey: cleanText(e.EventKey),
			Payload: payload, OccurredAt: at, Sqlstate: cleanText(SQLState(cause)), Reason: failureReason(cause),
		})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("quarantine event %s: %w", cleanText(e.SourceKey), mapErr(err))
	}
	return n > 0, nil
}

// CaptureQuarantineList lists quarantined events with an id above afterID, oldest first, without
// their payloads.
func (s *Store) CaptureQuarantineList(ctx context.Context, afterID int64, limit int) ([]Quarantined, error) {
	rows, err := s.q.CaptureQuarantineList(ctx, dbsqlc.CaptureQuarantineListParams{AfterID: afterID, RowLimit: int32(min(max(limit, 1), 10000))})
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", mapErr(err))
	}
	out := make([]Quarantined, len(rows))
	for i, r := range rows {
		out[i] = Quarantined{ID: r.ID, SourceKey: r.SourceKey, CompanyID: r.CompanyID, EventKey: r.EventKey,
			PayloadLen: r.PayloadBytes, OccurredAt: r.OccurredAt, SQLState: r.Sqlstate, Reason: r.Reason,
			FirstSeen: r.FirstSeenAt, LastTried: r.LastTriedAt, Attempts: r.Attempts}
	}
	return out, nil
}

// CaptureQuarantineGet returns one quarantined event with its payload; ErrNotFound when there is
// none with that id.
func (s *Store) CaptureQuarantineGet(ctx context.Context, id int64) (Quarantined, error) {
	r, err := s.q.CaptureQuarantineGet(ctx, id)
	if err != nil {
		return Quarantined{}, mapErr(err)
	}
	return Quarantined{ID: r.ID, SourceKey: r.SourceKey, CompanyID: r.CompanyID, EventKey: r.EventKey,
		Payload: r.Payload, PayloadLen: int64(len(r.Payload)), OccurredAt: r.OccurredAt, SQLState: r.Sqlstate,
		Reason: r.Reason, FirstSeen: r.FirstSeenAt, LastTried: r.LastTriedAt, Attempts: r.Attempts}, nil
}

// CaptureQuarantineCount counts the quarantined events.
func (s *Store) CaptureQuarantineCount(ctx context.Context) (int64, error) {
	n, err := s.q.CaptureQuarantineCount(ctx)
	return n, mapErr(err)
}

// CaptureQuarantineDrop deletes a quarantined event for good; ErrNotFound when there is none.
func (s *Store) CaptureQuarantineDrop(ctx context.Context, id int64) error {
	return affected(s.q.CaptureQuarantineDelete(ctx, id))
}

// ErrUnknownCompany: a retried event's company does not exist (any more).
var ErrUnknownCompany = errors.New("the event's company does not exist")

// CaptureQuarantineRetry runs the fan-out again for a quarantined event (CaptureCommit: the event
// and its deliveries) and, when that succeeds, removes it from the quarantine in the same
// transaction. When PostgreSQL refuses it again (a Permanent error) or its company is unknown,
// the event stays, with attempts+1 and the new reason, and the error is returned. A transient
// error changes nothing. An event quarantined without its payload (too large) is not retried:
// ErrPayloadNotKept, nothing changed. ErrNotFound when there is no such quarantined event.
func (s *Store) CaptureQuarantineRetry(ctx context.Context, id int64) (CaptureResult, error) {
	var res CaptureResult
	var refused error
	err := s.Tx(ctx, func(tx *Store) error {
		r, err := tx.q.CaptureQuarantineLock(ctx, id)
		if err != nil {
			return mapErr(err)
		}
		if len(r.Payload) == 0 {
			return ErrPayloadNotKept
		}
		e := CaptureEvent{SourceKey: r.SourceKey, CompanyID: r.CompanyID, EventKey: r.EventKey, Payload: r.Payload}
		if r.OccurredAt != nil {
			e.OccurredAt = *r.OccurredAt
		}
		res, err = tx.CaptureCommit(ctx, CaptureBatch{Events: []CaptureEvent{e}}) // a savepoint
		switch {
		case err == nil && len(res.UnknownCompany) > 0:
			refused = fmt.Errorf("company %q: %w", r.CompanyID, ErrUnknownCompany)
		case err != nil && Permanent(err):
			refused = err
		case err != nil:
			return err
		}
		if refused != nil {
			err := tx.q.CaptureQuarantineFailed(ctx, dbsqlc.CaptureQuarantineFailedParams{
				ID: id, Sqlstate: cleanText(SQLState(refused)), Reason: failureReason(refused)})
			return mapErr(err)
		}
		_, err = tx.q.CaptureQuarantineDelete(ctx, id)
		return mapErr(err)
	})
	if err != nil {
		return CaptureResult{}, err
	}
	if refused != nil {
		return CaptureResult{}, fmt.Errorf("retry quarantined event %d: %w", id, &RefusedError{Reason: failureReason(refused), Err: refused})
	}
	return res, nil
}

// RefusedError is PostgreSQL refusing an event's data again; Reason is what the quarantine
// records ("SQLSTATE 22P05: …").
type RefusedError struct {
	Reason string
	Err    error
}

func (e *RefusedError) Error() string { return e.Reason }
func (e *RefusedError) Unwrap() error { return e.Err }
