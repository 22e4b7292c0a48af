package store

import (
	"context"
	"encoding/json"
	"time"
)

// OutboxRow is a row of walhook.outbox.
type OutboxRow struct {
	ID        int64
	CompanyID string
	EventKey  string
	Payload   json.RawMessage
	CreatedAt time.Time
}

// OutboxClaim locks up to limit of the oldest outbox rows no other poller holds (FOR UPDATE SKIP
// LOCKED). Call it inside Tx and delete the rows with CaptureCommit in the same transaction.
func (s *Store) OutboxClaim(ctx context.Context, limit int) ([]OutboxRow, error) {
	rows, err := s.q.OutboxClaim(ctx, int32(min(limit, 1<<20)))
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]OutboxRow, len(rows))
	for i, r := range rows {
		out[i] = OutboxRow{ID: r.ID, CompanyID: r.CompanyID, EventKey: r.EventKey, Payload: r.Payload, CreatedAt: r.CreatedAt}
	}
	return out, nil
}
