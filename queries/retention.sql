-- History retention. The history is in weekly partitions (migration 0029): a week past the
-- retention age is dropped whole (Store.RetentionWeekDrop: DDL on partition names,
-- outside this file), and only the default partitions, where rows dated outside every week are
-- (a skewed clock, a pending delivery moved out of a dropped week), are deleted row by row.
-- Each row-deleting statement deletes at most one small batch and runs in its own short
-- transaction, so it never holds locks for long and never blocks capture or dispatch: rows another
-- session has locked (a delivery being claimed, an event a new delivery references) are skipped
-- and picked up by a later run.

-- RetentionTryLock takes the session advisory lock that lets one replica at a time run retention.
-- name: RetentionTryLock :one
SELECT pg_try_advisory_lock(hashtextextended('walhook.retention', 0)) AS locked;

-- name: RetentionUnlock :one
SELECT pg_advisory_unlock(hashtextextended('walhook.retention', 0)) AS unlocked;

-- RetentionLockTimeout sets lock_timeout for the rest of the transaction: creating
-- and dropping a partition take the parent's ACCESS EXCLUSIVE lock, and a statement waiting for it
-- behind a long query would queue every claim and capture behind itself.
-- name: RetentionLockTimeout :exec
SELECT set_config('lock_timeout', @lock_timeout::text, true);

-- The locks a partition's creation or drop needs, taken before it (Store.lockHistory) so that it
-- never waits for one while holding another: the relay's statements take them in different
-- orders (a claim: delivery, then event; capture: event, then delivery, then webhook), and a
-- DDL statement waiting for its second lock while holding its first would deadlock with them.
-- Each has a NOWAIT form: one waits (under lock_timeout), the others may not.
-- name: RetentionLockEvent :exec
LOCK TABLE walhook.event IN ACCESS EXCLUSIVE MODE;

-- name: RetentionLockEventNowait :exec
LOCK TABLE walhook.event IN ACCESS EXCLUSIVE MODE NOWAIT;

-- name: RetentionLockDelivery :exec
LOCK TABLE walhook.delivery IN ACCESS EXCLUSIVE MODE;

-- name: RetentionLockDeliveryNowait :exec
LOCK TABLE walhook.delivery IN ACCESS EXCLUSIVE MODE NOWAIT;

-- name: RetentionLockAttempt :exec
LOCK TABLE walhook.attempt IN ACCESS EXCLUSIVE MODE;

-- name: RetentionLockAttemptNowait :exec
LOCK TABLE walhook.attempt IN ACCESS EXCLUSIVE MODE NOWAIT;

-- Creating a delivery partition clones its foreign key to webhook, which adds triggers there.
-- name: RetentionLockWebhook :exec
LOCK TABLE walhook.webhook IN SHARE ROW EXCLUSIVE MODE;

-- name: RetentionLockWebhookNowait :exec
LOCK TABLE walhook.webhook IN SHARE ROW EXCLUSIVE MODE NOWAIT;

-- RetentionPartitionCreate creates the event, delivery and attempt partitions of the week of
-- @week that are missing (migration 0029) and answers how many it created.
-- name: RetentionPartitionCreate :one
SELECT walhook.history_partition_create(@week::timestamptz)::int AS created;

-- RetentionPartitionList lists the weekly partitions of the history: the partitions of event,
-- delivery and attempt named <table>_pYYYYMMDD, names only history_partition_create makes; the
-- week is the Monday (00:00 UTC) in the name. The default partitions are not weeks.
-- name: RetentionPartitionList :many
SELECT p.relname::text AS parent, c.relname::text AS partition,
    ((substring(c.relname from '_p([0-9]{8})$'))::date::timestamp AT TIME ZONE 'UTC')::timestamptz AS week
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = 'walhook' AND c.relkind = 'r' AND p.relname IN ('event', 'delivery', 'attempt')
  AND c.relname ~ ('^' || p.relname || '_p[0-9]{8}$')
ORDER BY week, parent;

-- RetentionPartitionRows estimates the rows of the named walhook tables without reading them:
-- the planner's reltuples, or, for a table never analyzed, the statistics' live row count.
-- name: RetentionPartitionRows :many
SELECT c.relname::text AS name,
    (CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE coalesce(s.n_live_tup, 0) END)::bigint AS estimate
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = 'walhook' AND c.relname = ANY(@names::text[]);

-- RetentionDeleteDeliveries deletes up to batch_size finished (succeeded or failed) deliveries
-- of the default partition created and last changed before cutoff; their attempts go with them
-- (trigger delivery_attempts_delete). Pending deliveries are work still to do and are never
-- deleted. Candidates in no particular order: every batch deletes rows past the cutoff, and the
-- next run takes the rest.
-- name: RetentionDeleteDeliveries :execrows
DELETE FROM walhook.delivery_pdefault
WHERE (id, event_at) IN (
    SELECT d.id, d.event_at FROM walhook.delivery_pdefault d
    WHERE d.created_at < @cutoff AND d.updated_at < @cutoff AND d.state <> 'pending'
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);

-- RetentionDeleteEvents deletes up to batch_size events of the default partition captured before
-- cutoff that no delivery references any more; the reference is looked up by (event_id,
-- event_at), so it probes one partition.
-- name: RetentionDeleteEvents :execrows
DELETE FROM walhook.event_pdefault
WHERE (id, occurred_at) IN (
    SELECT e.id, e.occurred_at FROM walhook.event_pdefault e
    WHERE e.captured_at < @cutoff
      AND NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.event_id = e.id AND d.event_at = e.occurred_at)
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);

-- RetentionWeekPending counts the pending deliveries of the week [lo, hi) — in its partition, and
-- any of its rows in the default partition — that a drop of the week would move into the default
-- partition under the three tables' ACCESS EXCLUSIVE locks. Read without those locks, through
-- delivery_due_idx (pending rows only).
-- name: RetentionWeekPending :one
SELECT count(*)::bigint AS n FROM walhook.delivery d
WHERE d.state = 'pending' AND d.event_at >= @lo AND d.event_at < @hi;

-- RetentionDeleteWeekDeliveries deletes the finished deliveries (and, by trigger, their attempts)
-- among the next batch_size deliveries of the week [lo, hi) by id after after_id: the row-by-row
-- expiry of a week kept because dropping it would move too many pending deliveries under the
-- tables' locks. The week is past the retention age (its end is), so, as a drop would, it takes
-- its finished rows whatever their updated_at. One pass walks the partition's primary key once
-- (last_id is where the next batch starts; scanned < batch_size: the end), never again over the
-- rows it deleted or kept.
-- name: RetentionDeleteWeekDeliveries :one
WITH c AS (
    SELECT d.id, d.event_at FROM walhook.delivery d
    WHERE d.event_at >= @lo AND d.event_at < @hi AND d.id > @after_id
    ORDER BY d.id
    LIMIT @batch_size
), del AS (
    -- By the ids as an array (the primary key's index, the week's partition only), not a join
    -- the planner may turn into a scan of the whole partition.
    DELETE FROM walhook.delivery d
    WHERE d.event_at >= @lo AND d.event_at < @hi
      AND d.id = ANY((SELECT array_agg(c.id) FROM c)::bigint[]) AND d.state <> 'pending'
    RETURNING d.id
)
SELECT (SELECT count(*) FROM del)::bigint AS deleted,
    (SELECT count(*) FROM c)::bigint AS scanned,
    coalesce((SELECT max(c.id) FROM c), 0)::bigint AS last_id;

-- RetentionDeleteWeekEvents deletes the events no delivery references any more among the next
-- batch_size events of the week [lo, hi) by id after after_id (the kept week's, as
-- RetentionDeleteWeekDeliveries).
-- name: RetentionDeleteWeekEvents :one
WITH c AS (
    SELECT e.id, e.occurred_at FROM walhook.event e
    WHERE e.occurred_at >= @lo AND e.occurred_at < @hi AND e.id > @after_id
    ORDER BY e.id
    LIMIT @batch_size
), del AS (
    DELETE FROM walhook.event e
    WHERE e.occurred_at >= @lo AND e.occurred_at < @hi
      AND e.id = ANY((SELECT array_agg(c.id) FROM c)::bigint[])
      AND NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.event_id = e.id AND d.event_at = e.occurred_at)
    RETURNING e.id
)
SELECT (SELECT count(*) FROM del)::bigint AS deleted,
    (SELECT count(*) FROM c)::bigint AS scanned,
    coalesce((SELECT max(c.id) FROM c), 0)::bigint AS last_id;

-- RetentionDefaultWeekRows counts the events and the deliveries of the week [lo, hi) already in
-- the default partitions (dated ahead: a source clock ahead, an outbox row's created_at), the
-- larger of the two: what creating the week's partitions would move out of them while holding
-- the three tables' ACCESS EXCLUSIVE locks. Read without those locks.
-- name: RetentionDefaultWeekRows :one
SELECT greatest(
    (SELECT count(*) FROM walhook.event_pdefault e WHERE e.occurred_at >= @lo AND e.occurred_at < @hi),
    (SELECT count(*) FROM walhook.delivery_pdefault d WHERE d.event_at >= @lo AND d.event_at < @hi))::bigint AS n;
