package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestReplayConcurrentClicks: replays of the same window started at once (a double click, two
// tabs, two replicas) queue each event once between them, whatever the mode, and another
// company's events of the same type are never queued.
func TestReplayConcurrentClicks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	owner := b.owners["a"]
	w, err := s.WebhookCreate(ctx, webhook.Webhook{CompanyID: "a", Name: "h", URL: "https://a.example/hook",
		Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true, Active: true}, &owner.ID)
	require.NoError(t, err)
	// 300 events of a (100 with a failed delivery to w, 200 with none) and 50 of b, an hour ago.
	at := time.Now().Add(-time.Hour)
	_, err = b.pool.Exec(ctx, `
		INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		SELECT 'k:' || c || ':' || i, c, 'contact.created', '{}', $1::timestamptz + i * interval '1 second'
		FROM (VALUES ('a', 300), ('b', 50)) AS x(c, n), generate_series(1, n) i`, at)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `
		INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, attempts)
		SELECT 'a', $1, id, occurred_at, event_key, 'failed', 1 FROM walhook.event WHERE company_id = 'a' ORDER BY id LIMIT 100`, w.ID)
	require.NoError(t, err)

	r := store.Replay{WebhookID: w.ID, EventKeys: []string{"contact.created"}, Since: at.Add(-time.Minute), Until: time.Now()}
	for _, mode := range []store.ReplayMode{store.ReplayFailed, store.ReplayNeverSent, store.ReplayAll} {
		r.Mode = mode
		want, err := s.ReplayCount(ctx, "a", r, store.MaxReplay)
		require.NoError(t, err)
		var wg sync.WaitGroup
		got := make([]int64, 4)
		for i := range got {
			wg.Go(func() {
				n, err := s.ReplayQueue(ctx, "a", r, store.MaxReplay)
				require.NoError(t, err)
				got[i] = n
			})
		}
		wg.Wait()
		require.Equal(t, want, got[0]+got[1]+got[2]+got[3], "%s: %v", mode, got)
		left, err := s.ReplayCount(ctx, "a", r, store.MaxReplay)
		require.NoError(t, err)
		require.Zero(t, left, mode)
	}
	var n, other int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE e.company_id <> 'a')
		FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id WHERE d.webhook_id = $1 AND d.state = 'pending'`, w.ID).Scan(&n, &other))
	require.Equal(t, 300, n, "every event of a, once")
	require.Zero(t, other)
}
