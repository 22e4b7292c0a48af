-- Back to one table each for the history (the layout of 0028), rows and ids kept.
ALTER TABLE walhook.attempt RENAME TO attempt_part;
ALTER TABLE walhook.delivery RENAME TO delivery_part;
ALTER TABLE walhook.event RENAME TO event_part;
ALTER TABLE walhook.attempt_part DROP CONSTRAINT attempt_pkey;
ALTER TABLE walhook.delivery_part DROP CONSTRAINT delivery_pkey, DROP CONSTRAINT delivery_event_id_webhook_id_key,
    DROP CONSTRAINT delivery_webhook_id_fkey;
ALTER TABLE walhook.event_part DROP CONSTRAINT event_pkey, DROP CONSTRAINT event_source_key_key;
DROP INDEX walhook.attempt_delivery_idx, walhook.delivery_due_idx, walhook.delivery_webhook_time_idx,
    walhook.event_company_key_time_idx, walhook.event_public_id_idx;
DROP STATISTICS walhook.delivery_company_webhook_stats;
ALTER SEQUENCE walhook.event_id_seq RENAME TO event_part_id_seq;
ALTER SEQUENCE walhook.delivery_id_seq RENAME TO delivery_part_id_seq;
ALTER SEQUENCE walhook.attempt_id_seq RENAME TO attempt_part_id_seq;

CREATE TABLE walhook.event (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_key   text        NOT NULL UNIQUE,
    company_id   text        NOT NULL,
    event_key    text        NOT NULL,
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    captured_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE walhook.delivery (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id       text        NOT NULL,
    webhook_id       bigint      NOT NULL REFERENCES walhook.webhook (id) ON DELETE CASCADE,
    event_id         bigint      NOT NULL REFERENCES walhook.event (id) ON DELETE CASCADE,
    event_key        text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
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
    resync_at        timestamptz,
    UNIQUE (event_id, webhook_id)
) WITH (fillfactor = 70);
CREATE TABLE walhook.attempt (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      bigint      NOT NULL REFERENCES walhook.delivery (id) ON DELETE CASCADE,
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
    outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed')),
    trigger          text        NOT NULL DEFAULT 'auto' CHECK (trigger IN ('auto', 'resync'))
);

-- Two events with one source_key (a replay in another week after its first copy was dropped,
-- which cannot happen: replays carry the same time) would break UNIQUE (source_key): keep the
-- first.
INSERT INTO walhook.event (id, source_key, company_id, event_key, payload, occurred_at, captured_at)
OVERRIDING SYSTEM VALUE
SELECT DISTINCT ON (source_key) id, source_key, company_id, event_key, payload, occurred_at, captured_at
FROM walhook.event_part ORDER BY source_key, id;
INSERT INTO walhook.delivery (id, company_id, webhook_id, event_id, event_key, state, attempts,
    next_attempt_at, lease_until, leased_by, last_status_code, last_error, last_attempt_at, created_at,
    updated_at, attempts_base, resync_at)
OVERRIDING SYSTEM VALUE
SELECT d.id, d.company_id, d.webhook_id, d.event_id, d.event_key, d.state, d.attempts,
    d.next_attempt_at, d.lease_until, d.leased_by, d.last_status_code, d.last_error, d.last_attempt_at,
    d.created_at, d.updated_at, d.attempts_base, d.resync_at
FROM walhook.delivery_part d WHERE EXISTS (SELECT 1 FROM walhook.event e WHERE e.id = d.event_id);
INSERT INTO walhook.attempt (id, delivery_id, company_id, webhook_id, n, started_at, duration_ms,
    request_method, request_url, request_headers, request_body, response_status, response_headers,
    response_body, error, outcome, trigger)
OVERRIDING SYSTEM VALUE
SELECT a.id, a.delivery_id, a.company_id, a.webhook_id, a.n, a.started_at, a.duration_ms,
    a.request_method, a.request_url, a.request_headers, a.request_body, a.response_status,
    a.response_headers, a.response_body, a.error, a.outcome, a.trigger
FROM walhook.attempt_part a WHERE EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.id = a.delivery_id);
SELECT setval(pg_get_serial_sequence('walhook.event', 'id'), greatest(last_value, 1), is_called)
FROM walhook.event_part_id_seq;
SELECT setval(pg_get_serial_sequence('walhook.delivery', 'id'), greatest(last_value, 1), is_called)
FROM walhook.delivery_part_id_seq;
SELECT setval(pg_get_serial_sequence('walhook.attempt', 'id'), greatest(last_value, 1), is_called)
FROM walhook.attempt_part_id_seq;
DROP TABLE walhook.attempt_part, walhook.delivery_part, walhook.event_part;
DROP FUNCTION walhook.delivery_attempts_delete();
DROP FUNCTION walhook.history_partition_create(timestamptz);
DROP FUNCTION walhook.history_week(timestamptz);

CREATE INDEX event_company_key_time_idx ON walhook.event (company_id, event_key, occurred_at, id);
CREATE INDEX event_public_id_idx ON walhook.event (company_id, (payload ->> 'id'));
CREATE INDEX event_captured_brin ON walhook.event USING brin (captured_at);
CREATE INDEX delivery_due_idx ON walhook.delivery (next_attempt_at) WHERE state = 'pending';
CREATE INDEX delivery_webhook_time_idx ON walhook.delivery (webhook_id, created_at DESC, id DESC);
CREATE INDEX delivery_created_brin ON walhook.delivery USING brin (created_at);
CREATE INDEX attempt_delivery_idx ON walhook.attempt (delivery_id, n);
CREATE STATISTICS walhook.delivery_company_webhook_stats (dependencies) ON company_id, webhook_id FROM walhook.delivery;
CREATE TRIGGER delivery_resync_mark
    BEFORE UPDATE OF state ON walhook.delivery
    FOR EACH ROW
    WHEN (OLD.state <> 'pending' AND NEW.state = 'pending')
    EXECUTE FUNCTION walhook.delivery_resync_mark();
