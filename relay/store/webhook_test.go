package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestWebhookEventKeys stores a webhook of several trigger events: they read back in the order
// given, the listing's event filter sees each (and only the company's own webhooks), and the
// database refuses a list the API would refuse (unknown key, empty, NULL element) without storing it.
func TestWebhookEventKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := setupCatalog(t, []webhook.EventType{
		{Key: "contact.created", Source: webhook.SourceOutbox},
		{Key: "contact.updated", Source: webhook.SourceOutbox},
		{Key: "contact.deleted", Source: webhook.SourceOutbox},
	}, "a", "b")

	three := []string{"contact.updated", "contact.created", "contact.deleted"}
	w, err := s.WebhookCreate(ctx, webhook.Webhook{CompanyID: "a", Name: "h", URL: "https://a.example/", Method: webhook.MethodPost,
		EventKeys: three, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	require.Equal(t, three, w.EventKeys)
	got, err := s.WebhookGet(ctx, "a", w.ID)
	require.NoError(t, err)
	require.Equal(t, three, got.EventKeys)
	other, err := s.WebhookCreate(ctx, webhook.Webhook{CompanyID: "b", Name: "h", URL: "https://b.example/", Method: webhook.MethodPost,
		EventKeys: []string{"contact.deleted"}, RawData: true, Active: true}, nil)
	require.NoError(t, err)

	for _, k := range three {
		page, err := s.WebhookListPage(ctx, "a", store.WebhookFilter{EventKey: &k})
		require.NoError(t, err)
		require.Len(t, page, 1, k)
		require.Equal(t, w.ID, page[0].ID)
	}
	// The other company's webhook of one of the events is its own, not a's.
	page, err := s.WebhookListPage(ctx, "b", store.WebhookFilter{EventKey: &three[2]})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, other.ID, page[0].ID)
	w.EventKeys = []string{"contact.created"}
	w, err = s.WebhookUpdate(ctx, w, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"contact.created"}, w.EventKeys)
	k := "contact.updated"
	page, err = s.WebhookListPage(ctx, "a", store.WebhookFilter{EventKey: &k})
	require.NoError(t, err)
	require.Empty(t, page)

	var ce *store.ConstraintError
	for name, c := range map[string]struct {
		keys       []string
		kind       error
		constraint string
	}{
		"unknown key": {[]string{"contact.created", "deal.won"}, store.ErrConflict, "webhook_event_keys_fkey"},
		"empty":       {[]string{}, store.ErrInvalid, "webhook_event_keys_check"},
		"nil":         {nil, store.ErrInvalid, ""},
		"too many":    {make51("contact.created"), store.ErrInvalid, "webhook_event_keys_check"},
	} {
		bad := w
		bad.EventKeys = c.keys
		_, err := s.WebhookUpdate(ctx, bad, nil)
		require.ErrorAs(t, err, &ce, name)
		require.ErrorIs(t, err, c.kind, name)
		if c.constraint != "" {
			require.Equal(t, c.constraint, ce.Constraint, name)
		}
		_, err = s.WebhookCreate(ctx, webhook.Webhook{CompanyID: "a", Name: "new", URL: "https://a.example/", Method: webhook.MethodPost,
			EventKeys: c.keys}, nil)
		require.ErrorIs(t, err, c.kind, name)
	}
	got, err = s.WebhookGet(ctx, "a", w.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"contact.created"}, got.EventKeys, "nothing refused was stored")
	list, err := s.WebhookList(ctx, "a", 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
}

// TestWebhookListCounts: each row of the listing, in either order, counts its own webhook's
// deliveries by state (walhook.webhook_counts, migration 0030), zeros for a webhook without any;
// the deliveries of the company's other webhooks and of another company's are not its own.
func TestWebhookListCounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	busy, idle, other := seedWebhook(t, s, "a", "busy"), seedWebhook(t, s, "a", "idle"), seedWebhook(t, s, "b", "other")
	// Events 1-6 of a, to busy: 2 succeeded, 1 failed, 3 pending; events 7-10 of b, to other: failed.
	_, err := b.pool.Exec(ctx, `
		INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		SELECT 'k:' || i, CASE WHEN i <= 6 THEN 'a' ELSE 'b' END, 'contact.created', '{}', now() FROM generate_series(1, 10) i`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `
		INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state)
		SELECT company_id, CASE company_id WHEN 'a' THEN $1::bigint ELSE $2::bigint END, id, occurred_at, event_key,
		       CASE WHEN i <= 2 THEN 'succeeded' WHEN i BETWEEN 4 AND 6 THEN 'pending' ELSE 'failed' END
		FROM (SELECT *, substr(source_key, 3)::int AS i FROM walhook.event) e`, busy.ID, other.ID)
	require.NoError(t, err)

	for _, order := range []store.WebhookSort{store.SortByName, store.SortByLastSent} {
		page, err := s.WebhookListPage(ctx, "a", store.WebhookFilter{Sort: order})
		require.NoError(t, err)
		got := map[int64]store.DeliveryCounts{}
		for _, w := range page {
			got[w.ID] = w.Counts
		}
		require.Equal(t, map[int64]store.DeliveryCounts{
			busy.ID: {Triggered: 6, Succeeded: 2, Failed: 1, Pending: 3},
			idle.ID: {},
		}, got, order)
	}
	page, err := s.WebhookListPage(ctx, "b", store.WebhookFilter{})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, store.DeliveryCounts{Triggered: 4, Failed: 4}, page[0].Counts)
}

func make51(k string) []string {
	out := make([]string, webhook.MaxEvents+1)
	for i := range out {
		out[i] = k
	}
	return out
}

// TestWebhookEventKeysMigration reverts migration 0020 with a webhook of two events (it keeps
// the first as event_key) and applies it again (the list of that one).
func TestWebhookEventKeysMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setupCatalog(t, []webhook.EventType{
		{Key: "contact.created", Source: webhook.SourceOutbox},
		{Key: "contact.updated", Source: webhook.SourceOutbox},
	}, "a")
	w, err := s.WebhookCreate(ctx, webhook.Webhook{CompanyID: "a", Name: "h", URL: "https://a.example/", Method: webhook.MethodPost,
		EventKeys: []string{"contact.updated", "contact.created"}, RawData: true}, nil)
	require.NoError(t, err)

	reverted, err := s.MigrateDownTo(ctx, 19)
	require.NoError(t, err)
	require.Contains(t, reverted, 20)
	var key string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT event_key FROM walhook.webhook WHERE id = $1`, w.ID).Scan(&key))
	require.Equal(t, "contact.updated", key)

	_, err = s.MigrateUp(ctx)
	require.NoError(t, err)
	got, err := s.WebhookGet(ctx, "a", w.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"contact.updated"}, got.EventKeys)
}
