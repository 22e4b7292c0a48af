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
