package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestRateTake takes tokens from a webhook's shared bucket: a new bucket is full (a burst of a
// tenth of the rate), an empty one says when its next token is due, it refills by time, and a
// webhook without a limit (or deleted) gets nothing.
func TestRateTake(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	limit := 50
	limited, err := s.WebhookCreate(ctx, webhook.Webhook{
		CompanyID: "a", Name: "limited", URL: "https://a.example/", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RateLimit: &limit,
	}, nil)
	require.NoError(t, err)
	require.Equal(t, 50, *limited.RateLimit)
	free, err := s.WebhookCreate(ctx, webhook.Webhook{
		CompanyID: "a", Name: "free", URL: "https://a.example/", Method: webhook.MethodPost, EventKeys: []string{"contact.created"},
	}, nil)
	require.NoError(t, err)
	require.Nil(t, free.RateLimit)

	limits, err := s.DispatchRateLimits(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int64]int{limited.ID: 50}, limits)

	got, err := s.DispatchRateTake(ctx, map[int64]int{limited.ID: 100, free.ID: 100})
	require.NoError(t, err)
	require.Len(t, got, 1, "a webhook without a limit has no bucket")
	require.Equal(t, 5, got[limited.ID].Taken, "a new bucket holds a burst of rate/10")
	require.Positive(t, got[limited.ID].Next)
	require.LessOrEqual(t, got[limited.ID].Next, 20*time.Millisecond)

	// Taken again at once: at most what refilled since (50/s), never a second burst.
	got, err = s.DispatchRateTake(ctx, map[int64]int{limited.ID: 100})
	require.NoError(t, err)
	require.Less(t, got[limited.ID].Taken, 5)

	// Refilled by time, up to the burst. (The sleep is what is tested: the time that refills the
	// bucket; 300 ms at 50/s is 15 tokens, three times the burst.)
	time.Sleep(300 * time.Millisecond)
	got, err = s.DispatchRateTake(ctx, map[int64]int{limited.ID: 2})
	require.NoError(t, err)
	require.Equal(t, 2, got[limited.ID].Taken)
	require.Zero(t, got[limited.ID].Next, "it got what it wanted")

	// A limit taken off: no more tokens (the dispatcher stops asking); a deleted webhook's
	// bucket goes with it.
	limited.RateLimit = nil
	_, err = s.WebhookUpdate(ctx, limited, nil)
	require.NoError(t, err)
	got, err = s.DispatchRateTake(ctx, map[int64]int{limited.ID: 1})
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, s.WebhookDelete(ctx, "a", limited.ID))
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM walhook.rate_bucket`).Scan(&n))
	require.Zero(t, n)
}
