package store

import (
	"context"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// RateTake is what DispatchRateTake got from one webhook's shared token bucket.
type RateTake struct {
	// Taken is how many requests may be sent now (at most the number wanted).
	Taken int
	// Next is when the bucket's next token is due, when Taken fell short of what was wanted
	// (zero otherwise).
	Next time.Duration
}

// DispatchRateLimits returns the rate limit (requests per second) of every webhook that has one.
func (s *Store) DispatchRateLimits(ctx context.Context) (map[int64]int, error) {
	rows, err := s.q.DispatchRateLimits(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make(map[int64]int, len(rows))
	for _, r := range rows {
		out[r.ID] = int(r.RateLimit)
	}
	return out, nil
}

// DispatchRateTake takes up to wants[id] tokens from the shared bucket of each webhook (see the
// query); a webhook without a rate limit (or deleted) is missing from the answer.
func (s *Store) DispatchRateTake(ctx context.Context, wants map[int64]int) (map[int64]RateTake, error) {
	p := dbsqlc.DispatchRateTakeParams{
		WebhookIds: make([]int64, 0, len(wants)), Wants: make([]int32, 0, len(wants)),
	}
	for id, n := range wants {
		p.WebhookIds = append(p.WebhookIds, id)
		p.Wants = append(p.Wants, int32(min(n, 1<<20)))
	}
	rows, err := s.q.DispatchRateTake(ctx, p)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make(map[int64]RateTake, len(rows))
	for _, r := range rows {
		t := RateTake{Taken: int(r.Taken)}
		if int(r.Taken) < wants[r.WebhookID] && r.Rate > 0 {
			t.Next = time.Duration((1 - min(r.Tokens, 1)) / float64(r.Rate) * float64(time.Second))
		}
		out[r.WebhookID] = t
	}
	return out, nil
}
