package store

import (
	"context"
	"encoding/json"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

// EventTypeSync upserts the catalog and retires every entry not in it, in one transaction.
func (s *Store) EventTypeSync(ctx context.Context, types []webhook.EventType) error {
	return s.Tx(ctx, func(tx *Store) error {
		keys := make([]string, len(types))
		for i, t := range types {
			keys[i] = t.Key
			sample := t.Sample
			if len(sample) == 0 {
				sample = json.RawMessage(`{}`)
			}
			p := dbsqlc.EventTypeUpsertParams{
				Key: t.Key, Description: t.Description, Source: string(t.Source),
				Operations: nonNilStrings(t.Operations), Columns: nonNilStrings(t.Columns), Sample: sample,
			}
			if t.Source == webhook.SourceTable {
				p.SourceTable, p.TenantColumn = &types[i].SourceTable, &types[i].TenantColumn
			}
			if err := tx.q.EventTypeUpsert(ctx, p); err != nil {
				return mapErr(err)
			}
		}
		_, err := tx.q.EventTypeRetireMissing(ctx, keys)
		return mapErr(err)
	})
}

func eventTypeFrom(r dbsqlc.WalhookEventType) webhook.EventType {
	t := webhook.EventType{
		Key: r.Key, Description: r.Description, Source: webhook.EventSource(r.Source),
		Operations: r.Operations, Columns: r.Columns, Sample: r.Sample, RetiredAt: r.RetiredAt,
	}
	if r.SourceTable != nil {
		t.SourceTable = *r.SourceTable
	}
	if r.TenantColumn != nil {
		t.TenantColumn = *r.TenantColumn
	}
	return t
}

// EventTypeList lists the catalog, retired entries included.
func (s *Store) EventTypeList(ctx context.Context) ([]webhook.EventType, error) {
	rows, err := s.q.EventTypeList(ctx)
	return rowsAs(rows, err, eventTypeFrom)
}

// EventTypeGet returns one catalog entry.
func (s *Store) EventTypeGet(ctx context.Context, key string) (webhook.EventType, error) {
	r, err := s.q.EventTypeGet(ctx, key)
	return eventTypeFrom(r), mapErr(err)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
