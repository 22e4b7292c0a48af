-- CaptureCommit stores a batch of captured events and fans each new one out to the active
-- webhooks of its company subscribed to its event key (one of their event_keys), in one statement: events whose company is
-- unknown are skipped (and returned), a replayed source_key inserts nothing (and so no
-- deliveries), consumed outbox rows are deleted, and dispatchers are woken when the transaction
-- commits.
-- name: CaptureCommit :one
WITH input AS (
    SELECT unnest(@source_keys::text[]) AS source_key, unnest(@company_ids::text[]) AS company_id,
        unnest(@event_keys::text[]) AS event_key, unnest(@payloads::text[])::jsonb AS payload,
        unnest(@occurred_ats::timestamptz[]) AS occurred_at
), known AS (
    SELECT i.source_key, i.company_id, i.event_key, i.payload, i.occurred_at FROM input i
    WHERE EXISTS (SELECT 1 FROM walhook.company c WHERE c.id = i.company_id)
), ins AS (
    INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
    SELECT k.source_key, k.company_id, k.event_key, k.payload, k.occurred_at FROM known k
    ON CONFLICT (source_key) DO NOTHING
    RETURNING id, company_id, event_key
), fan AS (
    INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_key)
    SELECT ins.company_id, w.id, ins.id, ins.event_key
    FROM ins JOIN walhook.webhook w ON w.active AND w.company_id = ins.company_id AND ins.event_key = ANY(w.event_keys)
    ON CONFLICT (event_id, webhook_id) DO NOTHING
    RETURNING 1
), gone AS (
    DELETE FROM walhook.outbox WHERE id = ANY(@outbox_ids::bigint[])
    RETURNING id
), woken AS (
    SELECT pg_notify('walhook_deliveries', '') WHERE EXISTS (SELECT 1 FROM fan)
)
SELECT
    (SELECT count(*) FROM ins)::bigint AS events,
    (SELECT count(*) FROM fan)::bigint AS deliveries,
    (SELECT coalesce(array_agg(id), '{}') FROM gone)::bigint[] AS outbox_deleted,
    (SELECT count(*) FROM woken)::bigint AS notified,
    (SELECT coalesce(array_agg(i.source_key), '{}') FROM input i
        WHERE NOT EXISTS (SELECT 1 FROM walhook.company c WHERE c.id = i.company_id))::text[] AS unknown_company;

-- name: CaptureModeSet :exec
UPDATE walhook.capture_setting SET mode = @mode, updated_at = now();

-- name: CaptureModeGet :one
SELECT mode FROM walhook.capture_setting;

-- CaptureTableColumns lists a table's columns for catalog validation.
-- name: CaptureTableColumns :many
SELECT column_name::text AS column_name
FROM information_schema.columns
WHERE table_schema = @schema_name::text AND table_name = @table_name::text
ORDER BY ordinal_position;

-- CaptureTableIdentity tells whether UPDATE/DELETE of a table can be published: a primary key,
-- or a replica identity other than default ('d' with a key, 'f' full, 'i' index; 'n' nothing).
-- name: CaptureTableIdentity :one
SELECT c.relreplident::text AS replica_identity,
    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_primary_key
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = @schema_name::text AND c.relname = @table_name::text AND c.relkind IN ('r', 'p');

-- CaptureTableIdentityColumns lists the columns of a table's replica identity index (the primary
-- key under the default identity, the chosen index under USING INDEX): the columns an UPDATE's
-- old row carries when the key changed. Empty under FULL (every column) and NOTHING.
-- name: CaptureTableIdentityColumns :many
SELECT a.attname::text AS column_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
    AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE n.nspname = @schema_name::text AND c.relname = @table_name::text
ORDER BY a.attnum;

-- name: CapturePublicationTables :many
SELECT schemaname::text AS schema_name, tablename::text AS table_name
FROM pg_catalog.pg_publication_tables WHERE pubname = @publication::text
ORDER BY 1, 2;

-- name: CapturePublicationGet :one
SELECT pubinsert, pubupdate, pubdelete, pubtruncate, puballtables
FROM pg_catalog.pg_publication WHERE pubname = @publication::text;

-- name: CaptureSlotGet :one
SELECT slot_name::text AS slot_name, coalesce(plugin::text, '')::text AS plugin, slot_type::text AS slot_type,
    coalesce(database::text, '')::text AS database_name, coalesce(active, false)::boolean AS active, active_pid,
    coalesce(restart_lsn::text, '')::text AS restart_lsn,
    coalesce(confirmed_flush_lsn::text, '')::text AS confirmed_flush_lsn,
    pg_current_wal_lsn()::text AS current_lsn,
    coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint AS lag_bytes,
    coalesce(wal_status, '')::text AS wal_status,
    safe_wal_size
FROM pg_catalog.pg_replication_slots WHERE slot_name = @slot::text;

-- name: CaptureSlotDrop :exec
SELECT pg_drop_replication_slot(@slot::text);

-- name: CaptureSlotCreate :one
-- A new logical slot for capture (pgoutput) at the current WAL position; it returns once the
-- slot is consistent, i.e. every transaction committed from then on will be decoded.
SELECT lsn::text AS lsn FROM pg_catalog.pg_create_logical_replication_slot(@slot::text, 'pgoutput');

-- name: CaptureListenOutbox :exec
LISTEN walhook_outbox;
