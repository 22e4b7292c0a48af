-- The history in weekly partitions (issue 17; the measurements behind it are in docs/benchmarks.md,
-- "Issue 17: history at scale"). Retention then drops a week of events, deliveries and attempts as
-- three tables instead of deleting its rows: under 1 MiB of WAL and half a second for a day of a
-- 10-million-delivery history, against 240 MiB, 6-12 s and a 424 MiB index pass for the row
-- deletes.
--
-- One key for the three tables: the event's time. walhook.event is partitioned on occurred_at;
-- delivery and attempt get event_at, a copy of their event's occurred_at, and are partitioned on
-- it. An event, its deliveries and their attempts are always in the partitions of one week, so a
-- week is dropped whole and no delivery outlives its event (a replay of an old event creates a
-- delivery today, in that event's week).
--
-- A unique index of a partitioned table must contain the partition key, so the keys are
-- (id, occurred_at) / (id, event_at), and the replay dedupe is UNIQUE (source_key, occurred_at):
-- occurred_at is a function of the source position (the source transaction's commit time; an
-- outbox row's created_at when polled), the same on every replay. Ids stay global: one identity
-- sequence a table, on the parent.
--
-- Times outside every week (a source server's skewed clock, an outbox row's created_at far in the
-- past or the future) go to the default partitions (<table>_pdefault), which retention empties
-- row by row. There are no foreign keys between the three: a partition referenced by a foreign
-- key cannot be detached without a check join over the referencing table. What
-- attempt → delivery ON DELETE CASCADE did, the trigger delivery_attempts_delete does (a deleted
-- webhook's deliveries take their attempts with them); dropping a partition fires nothing.
--
-- This migration copies the existing history into the new tables (walhook is stopped meanwhile:
-- `walhook migrate up`, or serve at start; the slot keeps the application's changes). It takes
-- about as long as the copy: a few minutes a million deliveries. Lowering --retention-max-age
-- first shortens it.

-- history_week is the week an instant belongs to: Monday 00:00 UTC.
CREATE FUNCTION walhook.history_week(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT date_trunc('week', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;

-- history_partition_create creates the partitions of event, delivery and attempt for the week of
-- `week` (named <table>_pYYYYMMDD after its Monday), the ones missing, and answers how many it
-- created. Rows of that week already in a default partition (an event dated ahead, captured
-- before its week had partitions) are moved into the new partition in the same transaction:
-- PostgreSQL refuses to create a partition while the default holds rows of its range. Creating a
-- partition locks the parent (ACCESS EXCLUSIVE) for an instant; the caller sets lock_timeout.
CREATE FUNCTION walhook.history_partition_create(week timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := walhook.history_week(week);
    hi timestamptz := walhook.history_week(week) + interval '7 days';
    suffix text := to_char(walhook.history_week(week) AT TIME ZONE 'UTC', 'YYYYMMDD');
    t record;
    part text;
    moving boolean;
    created integer := 0;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('event', 'occurred_at', ''),
        ('delivery', 'event_at', ' WITH (fillfactor = 70)'), -- room for the claim's HOT update (0006)
        ('attempt', 'event_at', '')) AS v (tbl, col, opts)
    LOOP
        part := t.tbl || '_p' || suffix;
        CONTINUE WHEN to_regclass(format('walhook.%I', part)) IS NOT NULL;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM walhook.%I WHERE %I >= $1 AND %I < $2)',
            t.tbl || '_pdefault', t.col, t.col) INTO moving USING lo, hi;
        IF moving THEN
            -- Out of the default partition, without firing delivery_attempts_delete (the
            -- attempts move too, they are not deleted), and back in through the parent.
            PERFORM set_config('walhook.history_moving', 'on', true);
            EXECUTE format('CREATE TEMPORARY TABLE history_moving (LIKE walhook.%I) ON COMMIT DROP', t.tbl);
            EXECUTE format('WITH m AS (DELETE FROM walhook.%I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                'INSERT INTO history_moving SELECT * FROM m', t.tbl || '_pdefault', t.col, t.col) USING lo, hi;
        END IF;
        EXECUTE format('CREATE TABLE walhook.%I PARTITION OF walhook.%I FOR VALUES FROM (%L) TO (%L)%s',
            part, t.tbl, lo, hi, t.opts);
        IF t.tbl = 'delivery' THEN
            -- Per partition: a partition's scan is planned with its own statistics (0026).
            EXECUTE format('CREATE STATISTICS walhook.%I (dependencies) ON company_id, webhook_id FROM walhook.%I',
                part || '_stats', part);
        END IF;
        IF moving THEN
            EXECUTE format('INSERT INTO walhook.%I OVERRIDING SYSTEM VALUE SELECT * FROM history_moving', t.tbl);
            DROP TABLE history_moving;
            PERFORM set_config('walhook.history_moving', '', true);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION walhook.history_partition_create(timestamptz) FROM PUBLIC;

-- The old tables give way; their keys and indexes go first (their names are reused), the rows
-- stay for the copy.
ALTER TABLE walhook.attempt RENAME TO attempt_old;
ALTER TABLE walhook.delivery RENAME TO delivery_old;
ALTER TABLE walhook.event RENAME TO event_old;
ALTER TABLE walhook.attempt_old DROP CONSTRAINT attempt_delivery_id_fkey;
ALTER TABLE walhook.delivery_old DROP CONSTRAINT delivery_event_id_fkey, DROP CONSTRAINT delivery_webhook_id_fkey;
ALTER TABLE walhook.attempt_old DROP CONSTRAINT attempt_pkey;
ALTER TABLE walhook.delivery_old DROP CONSTRAINT delivery_pkey, DROP CONSTRAINT delivery_event_id_webhook_id_key;
ALTER TABLE walhook.event_old DROP CONSTRAINT event_pkey, DROP CONSTRAINT event_source_key_key;
DROP INDEX walhook.attempt_delivery_idx, walhook.delivery_created_brin, walhook.delivery_due_idx,
    walhook.delivery_webhook_time_idx, walhook.event_captured_brin, walhook.event_company_key_time_idx,
    walhook.event_public_id_idx;
DROP STATISTICS walhook.delivery_company_webhook_stats;
ALTER SEQUENCE walhook.event_id_seq RENAME TO event_old_id_seq;
ALTER SEQUENCE walhook.delivery_id_seq RENAME TO delivery_old_id_seq;
ALTER SEQUENCE walhook.attempt_id_seq RENAME TO attempt_old_id_seq;

-- One row per captured event (see 0001); source_key is the source position, unique with its time.
CREATE TABLE walhook.event (
    id           bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    source_key   text        NOT NULL,
    company_id   text        NOT NULL,
    event_key    text        NOT NULL,
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    captured_at  timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (occurred_at);

-- The queue and the history: one row per (event, webhook); event_at is the event's occurred_at.
CREATE TABLE walhook.delivery (
    id               bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    company_id       text        NOT NULL,
    webhook_id       bigint      NOT NULL,
    event_id         bigint      NOT NULL,
    event_at         timestamptz NOT NULL,
    event_key        text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CONSTRAINT delivery_state_check CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    leased_by        text,
    last_status_code integer,
    last_error       text,
    last_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    attempts_base    integer     NOT NULL DEFAULT 0,
    resync_at        timestamptz
) PARTITION BY RANGE (event_at);

-- One row per HTTP try; event_at is its delivery's.
CREATE TABLE walhook.attempt (
    id               bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    delivery_id      bigint      NOT NULL,
    event_at         timestamptz NOT NULL,
    company_id       text        NOT NULL,
    webhook_id       bigint      NOT NULL,
    n                integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer     NOT NULL DEFAULT 0,
    request_method   text        NOT NULL,
    request_url      text        NOT NULL,
    request_headers  jsonb       NOT NULL DEFAULT '{}',
    request_body     text        DEFAULT '',
    response_status  integer,
    response_headers jsonb,
    response_body    text,
    error            text,
    outcome          text        NOT NULL CONSTRAINT attempt_outcome_check CHECK (outcome IN ('succeeded', 'retry', 'failed')),
    trigger          text        NOT NULL DEFAULT 'auto' CONSTRAINT attempt_trigger_check CHECK (trigger IN ('auto', 'resync'))
) PARTITION BY RANGE (event_at);

CREATE TABLE walhook.event_pdefault PARTITION OF walhook.event DEFAULT;
CREATE TABLE walhook.delivery_pdefault PARTITION OF walhook.delivery DEFAULT WITH (fillfactor = 70);
CREATE TABLE walhook.attempt_pdefault PARTITION OF walhook.attempt DEFAULT;

-- The weeks that hold history, no further back than a year (older rows, from a skewed clock or a
-- history never expired, go to the default partitions: one stray row must not make 52 partitions
-- every statement then plans over), and this week and the two ahead.
SELECT walhook.history_partition_create(w)
FROM (
    SELECT DISTINCT walhook.history_week(occurred_at) AS w FROM walhook.event_old
    WHERE occurred_at >= now() - interval '1 year' AND occurred_at < walhook.history_week(now())
    UNION
    SELECT generate_series(walhook.history_week(now()), walhook.history_week(now()) + interval '14 days', interval '7 days')
) AS weeks
ORDER BY w;

-- The copy, ids kept, keys and indexes built after it.
INSERT INTO walhook.event (id, source_key, company_id, event_key, payload, occurred_at, captured_at)
OVERRIDING SYSTEM VALUE
SELECT id, source_key, company_id, event_key, payload, occurred_at, captured_at FROM walhook.event_old;
INSERT INTO walhook.delivery (id, company_id, webhook_id, event_id, event_at, event_key, state, attempts,
    next_attempt_at, lease_until, leased_by, last_status_code, last_error, last_attempt_at, created_at,
    updated_at, attempts_base, resync_at)
OVERRIDING SYSTEM VALUE
SELECT d.id, d.company_id, d.webhook_id, d.event_id, e.occurred_at, d.event_key, d.state, d.attempts,
    d.next_attempt_at, d.lease_until, d.leased_by, d.last_status_code, d.last_error, d.last_attempt_at,
    d.created_at, d.updated_at, d.attempts_base, d.resync_at
FROM walhook.delivery_old d JOIN walhook.event_old e ON e.id = d.event_id;
INSERT INTO walhook.attempt (id, delivery_id, event_at, company_id, webhook_id, n, started_at, duration_ms,
    request_method, request_url, request_headers, request_body, response_status, response_headers,
    response_body, error, outcome, trigger)
OVERRIDING SYSTEM VALUE
SELECT a.id, a.delivery_id, d.event_at, a.company_id, a.webhook_id, a.n, a.started_at, a.duration_ms,
    a.request_method, a.request_url, a.request_headers, a.request_body, a.response_status,
    a.response_headers, a.response_body, a.error, a.outcome, a.trigger
FROM walhook.attempt_old a JOIN walhook.delivery d ON d.id = a.delivery_id;
SELECT setval(pg_get_serial_sequence('walhook.event', 'id'), greatest(last_value, 1), is_called)
FROM walhook.event_old_id_seq;
SELECT setval(pg_get_serial_sequence('walhook.delivery', 'id'), greatest(last_value, 1), is_called)
FROM walhook.delivery_old_id_seq;
SELECT setval(pg_get_serial_sequence('walhook.attempt', 'id'), greatest(last_value, 1), is_called)
FROM walhook.attempt_old_id_seq;
DROP TABLE walhook.attempt_old, walhook.delivery_old, walhook.event_old;

ALTER TABLE walhook.event
    ADD CONSTRAINT event_pkey PRIMARY KEY (id, occurred_at),
    ADD CONSTRAINT event_source_key_key UNIQUE (source_key, occurred_at);
CREATE INDEX event_public_id_idx ON walhook.event (company_id, (payload ->> 'id'));
CREATE INDEX event_company_key_time_idx ON walhook.event (company_id, event_key, occurred_at, id);

ALTER TABLE walhook.delivery
    ADD CONSTRAINT delivery_pkey PRIMARY KEY (id, event_at),
    ADD CONSTRAINT delivery_event_id_webhook_id_key UNIQUE (event_id, webhook_id, event_at),
    ADD CONSTRAINT delivery_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES walhook.webhook (id) ON DELETE CASCADE;
CREATE INDEX delivery_due_idx ON walhook.delivery (next_attempt_at) WHERE state = 'pending';
-- A webhook's history newest first; company_id and state included so the history's totals and the
-- listing's counts read the index alone (an index-only scan over a finished week, all-visible
-- after its vacuum) instead of one heap page per delivery: 63 pages against 3,269, 1.8 ms against
-- 7.7 ms warm and 304 ms cold, for a webhook of 3,223 deliveries (`walhook bench history
-- --deliveries 2000000 --keep`, DeliveryHistoryTotals under EXPLAIN (ANALYZE, BUFFERS)). The index
-- is ~50% larger (14 MB against 9.3 MB a week of 233,000 deliveries).
CREATE INDEX delivery_webhook_time_idx ON walhook.delivery (webhook_id, created_at DESC, id DESC) INCLUDE (company_id, state);
CREATE STATISTICS walhook.delivery_company_webhook_stats (dependencies) ON company_id, webhook_id FROM walhook.delivery;
CREATE TRIGGER delivery_resync_mark
    BEFORE UPDATE OF state ON walhook.delivery
    FOR EACH ROW
    WHEN (OLD.state <> 'pending' AND NEW.state = 'pending')
    EXECUTE FUNCTION walhook.delivery_resync_mark();

ALTER TABLE walhook.attempt ADD CONSTRAINT attempt_pkey PRIMARY KEY (id, event_at);
CREATE INDEX attempt_delivery_idx ON walhook.attempt (delivery_id, n);

-- A deleted delivery's attempts go with it (a webhook's deletion cascades to its deliveries).
-- history_partition_create moves rows out of a default partition and back: not a deletion.
CREATE FUNCTION walhook.delivery_attempts_delete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('walhook.history_moving', true) IS DISTINCT FROM 'on' THEN
        DELETE FROM walhook.attempt a WHERE a.delivery_id = OLD.id AND a.event_at = OLD.event_at;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER delivery_attempts_delete
    AFTER DELETE ON walhook.delivery
    FOR EACH ROW
    EXECUTE FUNCTION walhook.delivery_attempts_delete();

-- Statistics now (0026: only when there are rows; an empty table's ANALYZE misleads the planner
-- until autovacuum analyzes it again).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM walhook.delivery) THEN
        ANALYZE walhook.event, walhook.delivery, walhook.attempt;
    END IF;
END
$$;
