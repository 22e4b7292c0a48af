-- Queries of `walhook split` (store.Split) that span tables or the server. The copy itself
-- (COPY of every table, sequences) is table-generic SQL in relay/store/split.go.

-- SplitDatabaseIdentity names the database the connection is in: the cluster's system identifier
-- and the database's oid, so a split can refuse to copy a database into itself.
-- system_id is unsigned, as IDENTIFY_SYSTEM prints it (pg_control_system returns a signed bigint).
-- name: SplitDatabaseIdentity :one
SELECT (SELECT CASE WHEN system_identifier < 0 THEN system_identifier::numeric + 18446744073709551616
        ELSE system_identifier::numeric END FROM pg_catalog.pg_control_system())::text AS system_id,
    (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())::bigint AS database_oid,
    current_database()::text AS database_name;

-- SplitWalhookSessions lists the other sessions in this database that walhook processes opened
-- (application_name 'walhook', set by every walhook command unless the URL sets one), except the
-- split's own ('walhook split').
-- name: SplitWalhookSessions :many
SELECT pid::integer AS pid, coalesce(client_addr::text, 'local')::text AS client,
    coalesce(backend_start, now())::timestamptz AS since
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name = 'walhook' AND pid <> pg_backend_pid()
ORDER BY pid;

-- SplitReplicasSince counts the dispatcher replicas alive now or registered (or beating) since a
-- time: none may exist once the split marked the database.
-- name: SplitReplicasSince :one
SELECT count(*)::bigint FROM walhook.replica WHERE expires_at >= now() OR heartbeat_at >= @since::timestamptz;

-- SplitTableColumns lists a walhook table's columns as COPY takes them: in order, without dropped
-- or generated ones, with their types (both databases must agree).
-- name: SplitTableColumns :many
SELECT a.attname::text AS column_name, pg_catalog.format_type(a.atttypid, a.atttypmod)::text AS column_type,
    (a.attidentity <> '')::boolean AS is_identity
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'walhook' AND c.relname = @table_name::text AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attgenerated = ''
ORDER BY a.attnum;

-- SplitTables lists walhook's tables (partitions excluded: their parent is listed).
-- name: SplitTables :many
SELECT c.relname::text AS table_name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'walhook' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY 1;

-- SplitPositionSet records where capture continues in the source: the slot's confirmed position
-- when the split copied the events (walhook.capture_position, migration 0024; 0/0 without a
-- slot), and the source epoch the copied events' keys were made in (migration 0027), which
-- never goes back.
-- name: SplitPositionSet :exec
INSERT INTO walhook.capture_position AS cp (slot, system_id, lsn, epoch, epoch_reason, epoch_started_at)
VALUES (@slot::text, @system_id::text, (@lsn::text)::pg_lsn, @epoch::int, @epoch_reason::text, sqlc.narg('epoch_started_at')::timestamptz)
ON CONFLICT (slot) DO UPDATE SET system_id = excluded.system_id, lsn = excluded.lsn,
    epoch = greatest(cp.epoch, excluded.epoch), epoch_reason = excluded.epoch_reason,
    epoch_started_at = excluded.epoch_started_at, updated_at = now();

-- SplitReplicasClear deletes the rows of replicas whose heartbeat expired, in the mark's
-- transaction: a paused dispatcher that wakes up later finds no row to renew and must register,
-- which a marked database refuses.
-- name: SplitReplicasClear :exec
DELETE FROM walhook.replica WHERE expires_at < now();
