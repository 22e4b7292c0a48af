package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestTestPayload: a test send carries the company's newest event of the type (never another
// company's), or the catalog sample in an envelope of its own; "latest" with no event says so,
// and an unknown source or event type is refused.
func TestTestPayload(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setupCatalog(t, []webhook.EventType{
		{Key: "contact.created", Source: webhook.SourceOutbox, Sample: json.RawMessage(`{"email":"sample@example.com"}`)},
		{Key: "contact.deleted", Source: webhook.SourceOutbox},
	}, "a", "b")

	sample := func(company, key string, src store.TestPayloadSource) webhook.Envelope {
		t.Helper()
		p, err := s.TestPayload(ctx, company, key, src)
		require.NoError(t, err)
		var e webhook.Envelope
		require.NoError(t, json.Unmarshal(p, &e))
		require.True(t, strings.HasPrefix(e.ID, "evt_test_"), e.ID)
		require.Len(t, e.ID, len("evt_test_")+16)
		require.Equal(t, key, e.Type)
		require.Equal(t, company, e.CompanyID)
		require.False(t, e.OccurredAt.IsZero())
		require.Nil(t, e.Previous)
		return e
	}

	// No event yet: the sample, by default and on request; {} for a type without one.
	e1 := sample("a", "contact.created", store.TestPayloadAuto)
	require.JSONEq(t, `{"email":"sample@example.com"}`, string(e1.Data))
	e2 := sample("a", "contact.created", store.TestPayloadSample)
	require.JSONEq(t, `{"email":"sample@example.com"}`, string(e2.Data))
	require.NotEqual(t, e1.ID, e2.ID, "every sample envelope has an id of its own")
	require.JSONEq(t, `{}`, string(sample("a", "contact.deleted", store.TestPayloadAuto).Data))
	_, err := s.TestPayload(ctx, "a", "contact.created", store.TestPayloadLatest)
	require.ErrorIs(t, err, store.ErrNoEvent)

	// Events of b, then two of a: a's newest is its latest; b's are never a's.
	at := time.Now().Add(-time.Hour)
	for i, ev := range []struct{ company, payload string }{
		{"b", `{"id":"evt_b","data":{"who":"b"}}`},
		{"a", `{"id":"evt_old","data":{"who":"a old"}}`},
		{"a", `{"id":"evt_new","data":{"who":"a new"}}`},
	} {
		_, err := b.pool.Exec(ctx, `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
			VALUES ($1, $2, 'contact.created', $3, $4)`, "k:"+ev.payload, ev.company, ev.payload, at.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
	}
	for _, src := range []store.TestPayloadSource{store.TestPayloadAuto, store.TestPayloadLatest} {
		p, err := s.TestPayload(ctx, "a", "contact.created", src)
		require.NoError(t, err)
		require.JSONEq(t, `{"id":"evt_new","data":{"who":"a new"}}`, string(p), src)
	}
	require.JSONEq(t, `{"email":"sample@example.com"}`, string(sample("a", "contact.created", store.TestPayloadSample).Data))
	_, err = s.TestPayload(ctx, "a", "contact.deleted", store.TestPayloadLatest)
	require.ErrorIs(t, err, store.ErrNoEvent, "an event of another type is not one of this type")

	_, err = s.TestPayload(ctx, "a", "contact.created", store.TestPayloadSource("bogus"))
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.TestPayload(ctx, "a", "contact.merged", store.TestPayloadAuto)
	require.ErrorIs(t, err, store.ErrNotFound)
}
