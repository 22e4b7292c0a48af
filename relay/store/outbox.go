package store

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// OutboxRow is a row of walhook.outbox.
type OutboxRow struct {
	ID        int64
	CompanyID string
	EventKey  string
	Payload   json.RawMessage // nil when larger than OutboxClaim's maxPayload
	// PayloadBytes is the payload's size as text, sent or not.
	PayloadBytes int
	CreatedAt    time.Time
}

// OutboxClaim locks up to limit of the oldest outbox rows no other poller holds (FOR UPDATE SKIP
// LOCKED). Call it inside Tx and delete the rows in the same transaction: with CaptureCommit when
// the outbox is in walhook's database, with OutboxDelete when it is in the application's.
//
// A payload larger than maxPayload bytes (as text) is not read (Payload nil, PayloadBytes set),
// so a huge row never reaches the caller's memory; maxPayload <= 0 reads every payload.
func (s *Store) OutboxClaim(ctx context.Context, limit, maxPayload int) ([]OutboxRow, error) {
	mp := int64(maxPayload)
	if mp <= 0 {
		mp = math.MaxInt64
	}
	rows, err := s.q.OutboxClaim(ctx, dbsqlc.OutboxClaimParams{MaxRows: int32(min(limit, 1<<20)), MaxPayloadBytes: mp})
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]OutboxRow, len(rows))
	for i, r := range rows {
		out[i] = OutboxRow{ID: r.ID, CompanyID: r.CompanyID, EventKey: r.EventKey, Payload: r.Payload,
			PayloadBytes: int(r.PayloadBytes), CreatedAt: r.CreatedAt}
	}
	return out, nil
}

// OutboxDelete deletes consumed outbox rows (in the application's database, when walhook keeps its
// own apart: their events are committed in walhook's first). It returns the ids it found; a row
// not yet visible to a new snapshot, or already deleted, is not among them.
func (s *Store) OutboxDelete(ctx context.Context, ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	gone, err := s.q.OutboxDelete(ctx, ids)
	return gone, mapErr(err)
}

// OutboxListen LISTENs on walhook_outbox, the channel the outbox's insert trigger notifies, on a
// connection of its own (see Listener). Close it.
func (s *Store) OutboxListen(ctx context.Context) (*Listener, error) {
	return s.listen(ctx, "listen for outbox rows", (*dbsqlc.Queries).CaptureListenOutbox)
}
