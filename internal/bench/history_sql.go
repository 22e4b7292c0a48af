package bench

// The SQL of the history scenario (history.go). Layout "partitioned" is the schema the migrations
// make (migration 0029: the history in weekly partitions); layout "plain" is the one before it
// (0029 reverted), measured with the 0028 texts of the statements whose current text needs
// event_at (docs/benchmarks.md, "Issue 17: history at scale", gives the design and the figures).

// historyWeeks creates, with migration 0029's walhook.history_partition_create, the weeks of
// partitions from the week of $1 to two weeks ahead of today, as the migration does for an existing
// history and the retention runner does ahead: the generated history lands in its weeks, not in
// the default partitions.
const historyWeeks = `
SELECT coalesce(sum(walhook.history_partition_create(w)), 0)::bigint
FROM generate_series(walhook.history_week($1::timestamptz), walhook.history_week(now()) + interval '14 days',
    interval '7 days') AS w`

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

// The layout before migration 0029, as walhook ran it: plainClaim is DispatchClaim and
// plainRetentionDeliveries, plainRetentionEvents are RetentionDeleteDeliveries and
// RetentionDeleteEvents as queries/dispatch.sql and queries/retention.sql had them at 511b22a
// (migration 0028, the last before the partitions), parameters numbered as sqlc numbers them. The
// store's texts now carry event_at, a column the plain layout does not have.
const (
	// $1 skip_webhook_ids, $2 scan_limit, $3 share_webhook_ids, $4 share_counts, $5 per_webhook,
	// $6 max_rows, $7 lease_seconds, $8 lease_token.
	plainClaim = `
WITH cand AS (
    SELECT d.id, d.webhook_id, d.next_attempt_at
    FROM walhook.delivery d
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
      AND (d.lease_until IS NULL OR d.lease_until < now())
      AND d.webhook_id <> ALL ($1::bigint[])
    ORDER BY d.next_attempt_at
    LIMIT $2
), ranked AS (
    SELECT cand.id, cand.webhook_id, cand.next_attempt_at,
        row_number() OVER (PARTITION BY cand.webhook_id ORDER BY cand.next_attempt_at, cand.id) AS rn
    FROM cand
), share AS (
    SELECT unnest($3::bigint[]) AS webhook_id, unnest($4::bigint[]) AS n
), pick AS MATERIALIZED (
    SELECT ranked.id
    FROM ranked LEFT JOIN share ON share.webhook_id = ranked.webhook_id
    WHERE ranked.rn <= coalesce(share.n, $5::bigint)
    ORDER BY ranked.next_attempt_at
    LIMIT $6
), locked AS (
    SELECT l.id
    FROM pick, LATERAL (
        SELECT d.id, d.state, d.next_attempt_at, d.lease_until
        FROM walhook.delivery d
        WHERE d.id = pick.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) l
    WHERE l.state = 'pending' AND l.next_attempt_at <= now()
      AND (l.lease_until IS NULL OR l.lease_until < now())
), claimed AS (
    UPDATE walhook.delivery d
    SET lease_until = now() + make_interval(secs => $7::float8), leased_by = $8::text
    FROM locked
    WHERE d.id = locked.id
    RETURNING d.id, d.company_id, d.webhook_id, d.event_id, d.attempts, d.attempts_base, d.resync_at
)
SELECT claimed.id, claimed.company_id, claimed.webhook_id, claimed.event_id, claimed.attempts,
       claimed.attempts_base, claimed.resync_at,
       (CASE WHEN row_number() OVER (PARTITION BY claimed.event_id) = 1 THEN e.payload END)::jsonb AS payload,
       e.captured_at
FROM claimed
JOIN walhook.event e ON e.id = claimed.event_id`

	// $1 cutoff, $2 batch_size.
	plainRetentionDeliveries = `
DELETE FROM walhook.delivery
WHERE id IN (
    SELECT d.id FROM walhook.delivery d
    WHERE d.created_at < $1 AND d.updated_at < $1 AND d.state <> 'pending'
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)`

	// $1 cutoff, $2 batch_size.
	plainRetentionEvents = `
DELETE FROM walhook.event
WHERE id IN (
    SELECT e.id FROM walhook.event e
    WHERE e.captured_at < $1
      AND NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.event_id = e.id)
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)`
)
