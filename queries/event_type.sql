-- name: EventTypeUpsert :exec
INSERT INTO walhook.event_type (key, description, source, source_table, operations, tenant_column, columns, sample)
VALUES (@key, @description, @source, sqlc.narg('source_table'), @operations, sqlc.narg('tenant_column'), @columns, @sample)
ON CONFLICT (key) DO UPDATE SET
    description = excluded.description, source = excluded.source, source_table = excluded.source_table,
    operations = excluded.operations, tenant_column = excluded.tenant_column, columns = excluded.columns,
    sample = excluded.sample, retired_at = NULL, updated_at = now();

-- EventTypeRetireMissing retires every catalog entry not in keys; history keeps pointing at it.
-- name: EventTypeRetireMissing :execrows
UPDATE walhook.event_type SET retired_at = now(), updated_at = now()
WHERE retired_at IS NULL AND NOT (key = ANY(@keys::text[]));

-- name: EventTypeList :many
SELECT * FROM walhook.event_type ORDER BY key;

-- name: EventTypeGet :one
SELECT * FROM walhook.event_type WHERE key = $1;
