-- CaptureCommit stores a batch of captured events and fans each new one out to the active
-- webhooks of its company subscribed to its event key (one of their event_keys), in one
-- statement: events whose company is unknown are skipped (and returned), events of a disabled
-- company are stored but fanned out to no webhook, a replayed source_key inserts nothing (and so
-- no deliveries), consumed outbox rows are deleted, and dispatchers are woken when the
-- transaction commits if a delivery was left for any replica to claim.
--
-- Hand-off: when lease_token is not empty, the capture leader passes fresh deliveries to the
-- dispatcher in its own process without a claim. Up to lease_limit deliveries (at most
-- lease_per_webhook per webhook, or its share for the webhooks in lease_share_webhook_ids) are
-- inserted already leased to lease_token, and returned (the handed_* arrays) for the dispatcher
-- to send from memory. The others are inserted unleased for any replica to claim: those of a
-- webhook that must go the durable way (see must_claim below), and whatever is over the limits.
--
-- In two-database mode (capture.Config.Source) outbox_ids is empty: the consumed rows live in the
-- source and are deleted there after this commits (OutboxDelete).
--
-- This statement is the one place that decides which webhooks an event goes to (the matched CTE).
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
    ON CONFLICT (source_key, occurred_at) DO NOTHING
    RETURNING id, source_key, company_id, event_key, payload, occurred_at
), matched AS (
    -- Which webhooks an event goes to: the active webhooks of its company, if the company is not
    -- disabled, subscribed to its key (one of their event_keys).
    -- must_claim: a delivery the dispatcher must claim from the table rather than take from
    -- memory: its webhook is failing (its deliveries are retried on a schedule) or rate-limited
    -- (webhook.Webhook.Queued: its deliveries wait for tokens under claims sized by the limit),
    -- or the local dispatcher holds its share of the webhook or of the company already.
    SELECT ins.id AS event_id, ins.occurred_at AS event_at, ins.source_key, ins.company_id, ins.event_key, w.id AS webhook_id,
        (w.failing_since IS NOT NULL OR w.rate_limit IS NOT NULL
            OR w.id = ANY(@lease_skip_webhooks::bigint[])
            OR w.company_id = ANY(@lease_skip_companies::text[])) AS must_claim
    FROM ins JOIN walhook.webhook w ON w.active AND w.company_id = ins.company_id AND ins.event_key = ANY(w.event_keys)
    JOIN walhook.company c ON c.id = ins.company_id AND c.disabled_at IS NULL
), ranked AS (
    SELECT m.*, row_number() OVER (PARTITION BY m.webhook_id, m.must_claim ORDER BY m.event_id) AS per_webhook
    FROM matched m
), share AS (
    SELECT unnest(@lease_share_webhook_ids::bigint[]) AS webhook_id, unnest(@lease_share_counts::bigint[]) AS n
), eligible AS (
    SELECT r.event_id, r.event_at, r.source_key, r.company_id, r.event_key, r.webhook_id,
        (@lease_token::text <> '' AND NOT r.must_claim
            AND r.per_webhook <= coalesce(share.n, @lease_per_webhook::bigint)) AS eligible
    FROM ranked r LEFT JOIN share ON share.webhook_id = r.webhook_id
), planned AS (
    SELECT e.event_id, e.event_at, e.source_key, e.company_id, e.event_key, e.webhook_id,
        (e.eligible AND row_number() OVER (PARTITION BY e.eligible ORDER BY e.event_id, e.webhook_id) <= @lease_limit::bigint) AS handed
    FROM eligible e
), fan AS (
    INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, lease_until, leased_by)
    SELECT p.company_id, p.webhook_id, p.event_id, p.event_at, p.event_key,
        CASE WHEN p.handed THEN now() + make_interval(secs => @lease_seconds::float8) END,
        CASE WHEN p.handed THEN @lease_token::text END
    FROM planned p
    -- No ON CONFLICT: the events are those this statement inserted (a replayed source key
    -- inserts none), so none has a delivery yet; ON CONFLICT would make each row a speculative
    -- insertion, one more WAL record (HEAP_CONFIRM, 48 bytes) per delivery.
    RETURNING id, company_id, webhook_id, event_id, event_at, leased_by IS NOT NULL AS handed
), handed AS (
    -- The envelope as stored (jsonb's rendering: what a claim would read, and what the history
    -- shows as the body sent), once per event.
    SELECT f.id, f.company_id, f.webhook_id, f.event_id, f.event_at,
        CASE WHEN row_number() OVER (PARTITION BY f.event_id ORDER BY f.id) = 1 THEN ins.payload::text ELSE '' END AS payload
    FROM fan f JOIN ins ON ins.id = f.event_id
    WHERE f.handed
), gone AS (
    DELETE FROM walhook.outbox WHERE id = ANY(@outbox_ids::bigint[])
    RETURNING id
), woken AS (
    SELECT pg_notify('walhook_deliveries', '') WHERE EXISTS (SELECT 1 FROM fan WHERE NOT fan.handed)
), position AS (
    -- Where capture stands in the source (migration 0024): the end of the batch's last source
    -- transaction, stored with its events, never moved back for the same source cluster. Empty
    -- position_lsn (poll mode, a batch of parts only): nothing. A session of an earlier source
    -- epoch (migration 0027) moves nothing: the position belongs to the epoch's stream.
    INSERT INTO walhook.capture_position AS cp (slot, system_id, lsn, epoch)
    SELECT @position_slot::text, @position_system_id::text, nullif(@position_lsn::text, '')::pg_lsn, @position_epoch::int
    WHERE nullif(@position_lsn::text, '') IS NOT NULL
    ON CONFLICT (slot) DO UPDATE SET
        lsn = CASE WHEN cp.system_id = excluded.system_id THEN greatest(cp.lsn, excluded.lsn) ELSE excluded.lsn END,
        system_id = excluded.system_id, updated_at = now()
    WHERE cp.epoch = excluded.epoch
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM ins)::bigint AS events,
    (SELECT count(*) FROM fan)::bigint AS deliveries,
    (SELECT coalesce(array_agg(id), '{}') FROM gone)::bigint[] AS outbox_deleted,
    (SELECT count(*) FROM woken)::bigint AS notified,
    (SELECT coalesce(array_agg(i.source_key), '{}') FROM input i
        WHERE NOT EXISTS (SELECT 1 FROM walhook.company c WHERE c.id = i.company_id))::text[] AS unknown_company,
    (SELECT coalesce(array_agg(h.id ORDER BY h.id), '{}') FROM handed h)::bigint[] AS handed_ids,
    (SELECT coalesce(array_agg(h.company_id ORDER BY h.id), '{}') FROM handed h)::text[] AS handed_company_ids,
    (SELECT coalesce(array_agg(h.webhook_id ORDER BY h.id), '{}') FROM handed h)::bigint[] AS handed_webhook_ids,
    (SELECT coalesce(array_agg(h.event_id ORDER BY h.id), '{}') FROM handed h)::bigint[] AS handed_event_ids,
    (SELECT coalesce(array_agg(h.event_at ORDER BY h.id), '{}') FROM handed h)::timestamptz[] AS handed_event_ats,
    (SELECT coalesce(array_agg(h.payload ORDER BY h.id), '{}') FROM handed h)::text[] AS handed_payloads,
    now()::timestamptz AS captured_at;

-- name: CaptureModeSet :exec
UPDATE walhook.capture_setting SET mode = @mode, updated_at = now();

-- name: CaptureModeGet :one
SELECT mode FROM walhook.capture_setting;

-- CaptureTableColumns lists a table's columns for catalog validation. It reads pg_catalog, not
-- information_schema: its columns are domains (sql_identifier), and a role of the application's
-- database that may create in a schema on walhook's search_path could define an operator = on
-- (sql_identifier, text), an exact match preferred to pg_catalog's, which would run as walhook
-- (TestCatalogLookupNotHijacked). name = text is pg_catalog's own exact match.
-- name: CaptureTableColumns :many
SELECT a.attname::text AS column_name
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = @schema_name::text AND c.relname = @table_name::text
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

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

-- CapturePositionGet is where capture stands in the source for a slot (see CaptureCommit), and
-- the source epoch (migration 0027).
-- name: CapturePositionGet :one
SELECT system_id, lsn::text AS lsn, epoch, epoch_reason, epoch_started_at
FROM walhook.capture_position WHERE slot = @slot::text;

-- CaptureEpochBump starts a new source epoch for a slot (migration 0027): epoch + 1, the position
-- forgotten (0/0), the source's system identifier recorded ('' keeps the stored one). It applies
-- only while the stored epoch is still seen_epoch, so callers that saw the same row start one
-- epoch between them; no row then. A slot without a row gets one at epoch 1.
-- name: CaptureEpochBump :one
INSERT INTO walhook.capture_position AS cp (slot, system_id, lsn, epoch, epoch_reason, epoch_started_at)
VALUES (@slot::text, @system_id::text, '0/0', 1, @reason::text, now())
ON CONFLICT (slot) DO UPDATE SET
    epoch = cp.epoch + 1,
    system_id = CASE WHEN excluded.system_id = '' THEN cp.system_id ELSE excluded.system_id END,
    lsn = '0/0', epoch_reason = excluded.epoch_reason, epoch_started_at = now(), updated_at = now()
WHERE cp.epoch = @seen_epoch::int
RETURNING epoch;
