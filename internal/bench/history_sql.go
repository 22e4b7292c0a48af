package bench

// The SQL of the history scenario (history.go). Layout "plain" is the schema the migrations
// make; layout "partitioned" replaces walhook.event, walhook.delivery and walhook.attempt with the
// time-partitioned tables below (docs/benchmarks.md, "Issue 17: history at scale", gives the
// design and the figures).

// partitionedDDL replaces the three history tables of a freshly migrated (empty) database by
// range-partitioned ones. The three are partitioned on one instant, the event's occurred_at
// (event.occurred_at; copied into delivery.event_at and attempt.event_at), so an event, its
// deliveries and their attempts always sit in partitions of the same range and retention drops
// the three together: a delivery created later (a replay of an old event) lives in its event's
// partition and goes with it, never outliving the event it points to.
//
// A unique index of a partitioned table must contain the partition key, so:
//   - event: PRIMARY KEY (id, occurred_at); the replay dedupe is UNIQUE (source_key, occurred_at),
//     which holds because occurred_at is a function of the source position (the source
//     transaction's commit time; an outbox row's created_at);
//   - delivery: PRIMARY KEY (id, event_at), UNIQUE (event_id, webhook_id, event_at);
//   - attempt: PRIMARY KEY (id, event_at).
//
// There is no foreign key between the three (detaching a partition referenced by one runs a check
// join over the whole referencing table): they are dropped together by range. delivery keeps its
// key to walhook.webhook (ON DELETE CASCADE); a webhook's attempts are deleted with it by the
// store. The BRIN indexes on created_at/captured_at go: retention no longer searches rows.
const partitionedDDL = `
DROP TABLE walhook.attempt;
DROP TABLE walhook.delivery;
DROP TABLE walhook.event;

CREATE TABLE walhook.event (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    source_key   text        NOT NULL,
    company_id   text        NOT NULL,
    event_key    text        NOT NULL,
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    captured_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_pkey PRIMARY KEY (id, occurred_at),
    CONSTRAINT event_source_key_key UNIQUE (source_key, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX event_public_id_idx ON walhook.event (company_id, (payload ->> 'id'));
CREATE INDEX event_company_key_time_idx ON walhook.event (company_id, event_key, occurred_at, id);

CREATE TABLE walhook.delivery (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    company_id       text        NOT NULL,
    webhook_id       bigint      NOT NULL,
    event_id         bigint      NOT NULL,
    event_at         timestamptz NOT NULL,
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
    CONSTRAINT delivery_pkey PRIMARY KEY (id, event_at),
    CONSTRAINT delivery_event_id_webhook_id_key UNIQUE (event_id, webhook_id, event_at),
    CONSTRAINT delivery_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES walhook.webhook (id) ON DELETE CASCADE
) PARTITION BY RANGE (event_at);
CREATE INDEX delivery_due_idx ON walhook.delivery (next_attempt_at) WHERE state = 'pending';
CREATE INDEX delivery_webhook_time_idx ON walhook.delivery (webhook_id, created_at DESC, id DESC);
CREATE TRIGGER delivery_resync_mark
    BEFORE UPDATE OF state ON walhook.delivery
    FOR EACH ROW
    WHEN (OLD.state <> 'pending' AND NEW.state = 'pending')
    EXECUTE FUNCTION walhook.delivery_resync_mark();

CREATE TABLE walhook.attempt (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
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
    outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed')),
    trigger          text        NOT NULL DEFAULT 'auto' CHECK (trigger IN ('auto', 'resync')),
    CONSTRAINT attempt_pkey PRIMARY KEY (id, event_at)
) PARTITION BY RANGE (event_at);
CREATE INDEX attempt_delivery_idx ON walhook.attempt (delivery_id, n);

-- history_partition_create creates the partitions of the three tables for [since, since + span),
-- named by their first day, unless they exist. The delivery partitions keep the fillfactor of
-- migration 0006 (room for the claim's HOT update).
CREATE FUNCTION walhook.history_partition_create(since timestamptz, span interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    suffix text := to_char(since AT TIME ZONE 'UTC', 'YYYYMMDD');
    lo text := quote_literal(since);
    hi text := quote_literal(since + span);
BEGIN
    EXECUTE format('CREATE TABLE IF NOT EXISTS walhook.%I PARTITION OF walhook.event FOR VALUES FROM (%s) TO (%s)',
        'event_p' || suffix, lo, hi);
    EXECUTE format('CREATE TABLE IF NOT EXISTS walhook.%I PARTITION OF walhook.delivery FOR VALUES FROM (%s) TO (%s) WITH (fillfactor = 70)',
        'delivery_p' || suffix, lo, hi);
    EXECUTE format('CREATE TABLE IF NOT EXISTS walhook.%I PARTITION OF walhook.attempt FOR VALUES FROM (%s) TO (%s)',
        'attempt_p' || suffix, lo, hi);
END $$;
`

// historyPartitionsCreate creates the partitions covering [$1, $2) of $3 each.
const historyPartitionsCreate = `
SELECT walhook.history_partition_create(t, $3::interval)
FROM generate_series($1::timestamptz, $2::timestamptz - $3::interval, $3::interval) t`

// The generated history. Event k (1..events) belongs to company (k % companies) + 1 and occurred
// at start + (k-1)*step; it goes to two of its company's three webhooks, as deliveries 2k-1 and
// 2k. A tenth of the deliveries took three attempts (two retries), the others one (1.2 attempts a
// delivery); one in a hundred ended failed. The newest `pending` deliveries are due and not yet
// tried. Row sizes are those of a real envelope (~600 bytes of JSON), a signed request's
// headers and a short response.
const (
	genCompanies = `
INSERT INTO walhook.company (id, name)
SELECT 'co_' || c, 'Company ' || c FROM generate_series(1, $1::int) c`
	genEventTypes = `
INSERT INTO walhook.event_type (key, source) VALUES
    ('order.created', 'outbox'), ('order.paid', 'outbox'), ('customer.updated', 'outbox')`
	genWebhooks = `
INSERT INTO walhook.webhook (id, company_id, name, url, method, active, signing_secret_enc, event_keys)
OVERRIDING SYSTEM VALUE
SELECT w, 'co_' || ((w - 1) / 3 + 1), 'hook ' || w,
       'https://hooks.example.com/co_' || ((w - 1) / 3 + 1) || '/walhook/' || w, 'POST', true,
       '\x0001020304'::bytea, ARRAY['order.created', 'order.paid', 'customer.updated']
FROM generate_series(1, $1::int * 3) w`
	genWebhookSeq = `SELECT setval(pg_get_serial_sequence('walhook.webhook', 'id'), $1::int * 3)`

	// $1, $2: the event range [lo, hi]; $3 companies; $4 start; $5 step.
	genEvents = `
INSERT INTO walhook.event (id, source_key, company_id, event_key, payload, occurred_at, captured_at)
OVERRIDING SYSTEM VALUE
SELECT k, 'wal:0/' || to_hex(k * 4096) || ':0', x.company, x.key,
    jsonb_build_object('id', 'evt_' || md5(k::text), 'type', x.key, 'company_id', x.company,
        'occurred_at', x.at,
        'data', jsonb_build_object('id', k, 'number', 'ORD-' || k, 'email', 'customer' || k || '@example.com',
            'total_cents', (k * 7919) % 100000, 'currency', 'EUR', 'status', 'paid',
            'items', jsonb_build_array(
                jsonb_build_object('sku', substr(md5(k::text || 'a'), 1, 12), 'qty', 1 + k % 3, 'price_cents', (k * 31) % 5000),
                jsonb_build_object('sku', substr(md5(k::text || 'b'), 1, 12), 'qty', 1, 'price_cents', (k * 17) % 9000)),
            'shipping', jsonb_build_object('name', 'Customer ' || k, 'street', md5(k::text) || ' Street 1',
                'city', 'Berlin', 'zip', (10000 + k % 90000)::text, 'country', 'DE'),
            'note', repeat(substr(md5(k::text || 'n'), 1, 16), 4))),
    x.at, x.at + interval '40 milliseconds'
FROM generate_series($1::bigint, $2::bigint) k,
LATERAL (SELECT 'co_' || (k % $3::int + 1) AS company,
                (ARRAY['order.created', 'order.paid', 'customer.updated'])[k % 3 + 1] AS key,
                $4::timestamptz + (k - 1) * $5::interval AS at) x`

	// $1, $2: the delivery range [lo, hi]; $3 companies; $4 start; $5 step (per event); $6 the
	// first pending delivery. %s: ", event_at" in the partitioned layout.
	genDeliveries = `
INSERT INTO walhook.delivery (id, company_id, webhook_id, event_id%[1]s, event_key, state, attempts,
    next_attempt_at, last_status_code, last_error, last_attempt_at, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT d, 'co_' || x.c, (x.c - 1) * 3 + (x.k + d %% 2) %% 3 + 1, x.k%[2]s,
    (ARRAY['order.created', 'order.paid', 'customer.updated'])[x.k %% 3 + 1],
    CASE WHEN d >= $6 THEN 'pending' WHEN d %% 100 = 0 THEN 'failed' ELSE 'succeeded' END,
    CASE WHEN d >= $6 THEN 0 WHEN d %% 10 = 0 THEN 3 ELSE 1 END,
    CASE WHEN d >= $6 THEN now() - interval '1 minute' ELSE x.at END,
    CASE WHEN d >= $6 THEN NULL WHEN d %% 100 = 0 THEN 500 ELSE 200 END,
    CASE WHEN d < $6 AND d %% 100 = 0 THEN 'HTTP 500' END,
    CASE WHEN d >= $6 THEN NULL WHEN d %% 10 = 0 THEN x.at + interval '90 seconds' ELSE x.at + interval '50 milliseconds' END,
    x.at + interval '45 milliseconds',
    CASE WHEN d >= $6 THEN x.at + interval '45 milliseconds' WHEN d %% 10 = 0 THEN x.at + interval '91 seconds' ELSE x.at + interval '1 second' END
FROM generate_series($1::bigint, $2::bigint) d,
LATERAL (SELECT (d + 1) / 2 AS k, ((d + 1) / 2) %% $3::int + 1 AS c,
                $4::timestamptz + ((d + 1) / 2 - 1) * $5::interval AS at) x`

	// $1, $2: the delivery range; $3 companies; $4 start; $5 step; $6 the first pending delivery.
	// %s: ", event_at" in the partitioned layout.
	genAttempts = `
INSERT INTO walhook.attempt (delivery_id%[1]s, company_id, webhook_id, n, started_at, duration_ms,
    request_method, request_url, request_headers, request_body, response_status, response_headers,
    response_body, error, outcome)
SELECT d%[2]s, 'co_' || x.c, x.w, n, x.at + (n - 1) * interval '45 seconds', 40 + d %% 200,
    'POST', 'https://hooks.example.com/co_' || x.c || '/walhook/' || x.w,
    jsonb_build_object('content-type', 'application/json', 'user-agent', 'walhook/1.0',
        'webhook-id', 'msg_' || md5(x.k::text), 'webhook-timestamp', extract(epoch FROM x.at)::bigint::text,
        'webhook-signature', 'v1,' || md5(d::text || 's') || md5(d::text || 't')),
    NULL,
    CASE WHEN n < x.a THEN 503 WHEN d %% 100 = 0 THEN 500 ELSE 200 END,
    jsonb_build_object('content-type', 'application/json', 'server', 'nginx', 'date', to_char(x.at, 'Dy, DD Mon YYYY HH24:MI:SS') || ' GMT'),
    CASE WHEN n < x.a OR d %% 100 = 0 THEN '{"error":"upstream unavailable"}' ELSE '{"ok":true}' END,
    NULL,
    CASE WHEN n < x.a THEN 'retry' WHEN d %% 100 = 0 THEN 'failed' ELSE 'succeeded' END
FROM generate_series($1::bigint, least($2::bigint, $6::bigint - 1)) d,
LATERAL (SELECT (d + 1) / 2 AS k, ((d + 1) / 2) %% $3::int + 1 AS c,
                (((d + 1) / 2) %% $3::int) * 3 + ((d + 1) / 2 + d %% 2) %% 3 + 1 AS w,
                CASE WHEN d %% 10 = 0 THEN 3 ELSE 1 END AS a,
                $4::timestamptz + ((d + 1) / 2 - 1) * $5::interval AS at) x,
LATERAL generate_series(1, x.a) n`
)

// historyKeys lists the primary keys, unique constraints and foreign keys (in that order) and the
// other indexes of the three history tables, so that loading can drop them and build them after.
const historyKeys = `
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)),
       CASE contype WHEN 'f' THEN 2 ELSE 0 END
FROM pg_constraint
WHERE conrelid IN ('walhook.event'::regclass, 'walhook.delivery'::regclass, 'walhook.attempt'::regclass)
  AND contype IN ('p', 'u', 'f')
UNION ALL
SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 1
FROM pg_index i
WHERE i.indrelid IN ('walhook.event'::regclass, 'walhook.delivery'::regclass, 'walhook.attempt'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
ORDER BY 3`

// claimPartitioned is DispatchClaim (queries/dispatch.sql) for the partitioned layout: the
// candidates carry their partition key, so the lock, the update and the event's join each reach
// one partition instead of probing all of them.
const claimPartitioned = `
WITH cand AS (
    SELECT d.id, d.event_at, d.webhook_id, d.next_attempt_at
    FROM walhook.delivery d
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
      AND (d.lease_until IS NULL OR d.lease_until < now())
      AND d.webhook_id <> ALL ($1::bigint[])
    ORDER BY d.next_attempt_at
    LIMIT $2
), ranked AS (
    SELECT cand.id, cand.event_at, cand.webhook_id, cand.next_attempt_at,
        row_number() OVER (PARTITION BY cand.webhook_id ORDER BY cand.next_attempt_at, cand.id) AS rn
    FROM cand
), pick AS MATERIALIZED (
    SELECT ranked.id, ranked.event_at
    FROM ranked
    WHERE ranked.rn <= $3::bigint
    ORDER BY ranked.next_attempt_at
    LIMIT $4
), locked AS (
    SELECT l.id, l.event_at
    FROM pick, LATERAL (
        SELECT d.id, d.event_at, d.state, d.next_attempt_at, d.lease_until
        FROM walhook.delivery d
        WHERE d.id = pick.id AND d.event_at = pick.event_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) l
    WHERE l.state = 'pending' AND l.next_attempt_at <= now()
      AND (l.lease_until IS NULL OR l.lease_until < now())
), claimed AS (
    UPDATE walhook.delivery d
    SET lease_until = now() + make_interval(secs => $5::float8), leased_by = $6::text
    FROM locked
    WHERE d.id = locked.id AND d.event_at = locked.event_at
    RETURNING d.id, d.event_at, d.company_id, d.webhook_id, d.event_id, d.attempts, d.attempts_base, d.resync_at
)
SELECT claimed.id, claimed.company_id, claimed.webhook_id, claimed.event_id, claimed.attempts,
       claimed.attempts_base, claimed.resync_at,
       (CASE WHEN row_number() OVER (PARTITION BY claimed.event_id) = 1 THEN e.payload END)::jsonb AS payload,
       e.captured_at
FROM claimed
JOIN walhook.event e ON e.id = claimed.event_id AND e.occurred_at = claimed.event_at`

// releasePartitioned gives claimed deliveries back (DispatchRelease without the token check).
const releasePartitioned = `
UPDATE walhook.delivery SET lease_until = NULL, leased_by = NULL
WHERE id = ANY($1::bigint[]) AND leased_by = $2`

// oldPartitions lists the partition sets (by their delivery partition) entirely older than $1,
// oldest first, with whether a pending delivery still holds each.
const oldPartitions = `
SELECT c.relname, substr(c.relname, length('delivery_p') + 1),
       EXISTS (SELECT 1 FROM walhook.delivery d
               WHERE d.state = 'pending' AND d.tableoid = c.oid) AS pending
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'walhook.delivery'::regclass
  AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz <= $1
ORDER BY 1`
