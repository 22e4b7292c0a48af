-- DispatchClaim leases up to max_rows due deliveries for one claim token and returns each with
-- its event's envelope. Candidates are the scan_limit earliest due deliveries whose lease is free
-- or expired, skipping the webhooks this replica already has at their in-flight cap; at most
-- per_webhook of them per webhook are taken (or the webhook's own share, for the webhooks listed
-- in share_webhook_ids: sized by the dispatcher from the webhook's observed rate), so one busy
-- webhook cannot fill a batch beyond what it can send within the lease. The rows are
-- locked with SKIP LOCKED, so replicas never claim the same delivery; the WHERE clause is checked
-- again on the locked row. An event's envelope comes once per claim, on the first of its
-- deliveries (NULL on the others; the store fills them in): fan-out claims 100 of one event.
--
-- The plan is fixed by the query's shape, not left to the statistics: the picked ids are
-- computed once (MATERIALIZED) and each is locked through the primary key (LATERAL … LIMIT 1).
-- Written as "id IN (picked)", a plan made while the table had no statistics (a fresh database:
-- the prepared statement's first plans) re-ran the window over the candidates for every due row
-- it scanned, and a claim of a few thousand due deliveries ran for minutes.
-- name: DispatchClaim :many
WITH cand AS (
    SELECT d.id, d.event_at, d.webhook_id, d.next_attempt_at
    FROM walhook.delivery d
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
      AND (d.lease_until IS NULL OR d.lease_until < now())
      AND d.webhook_id <> ALL (@skip_webhook_ids::bigint[])
    ORDER BY d.next_attempt_at
    LIMIT @scan_limit
), ranked AS (
    SELECT cand.id, cand.event_at, cand.webhook_id, cand.next_attempt_at,
        row_number() OVER (PARTITION BY cand.webhook_id ORDER BY cand.next_attempt_at, cand.id) AS rn
    FROM cand
), share AS (
    SELECT unnest(@share_webhook_ids::bigint[]) AS webhook_id, unnest(@share_counts::bigint[]) AS n
), pick AS MATERIALIZED (
    SELECT ranked.id, ranked.event_at
    FROM ranked LEFT JOIN share ON share.webhook_id = ranked.webhook_id
    WHERE ranked.rn <= coalesce(share.n, @per_webhook::bigint)
    ORDER BY ranked.next_attempt_at
    LIMIT @max_rows
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
    SET lease_until = now() + make_interval(secs => @lease_seconds::float8), leased_by = @lease_token::text
    FROM locked
    WHERE d.id = locked.id AND d.event_at = locked.event_at
    RETURNING d.id, d.event_at, d.company_id, d.webhook_id, d.event_id, d.attempts, d.attempts_base, d.resync_at
)
SELECT claimed.id, claimed.event_at, claimed.company_id, claimed.webhook_id, claimed.event_id, claimed.attempts,
       claimed.attempts_base, claimed.resync_at,
       (CASE WHEN row_number() OVER (PARTITION BY claimed.event_id) = 1 THEN e.payload END)::jsonb AS payload,
       e.captured_at
FROM claimed
JOIN walhook.event e ON e.id = claimed.event_id AND e.occurred_at = claimed.event_at;

-- DispatchClaimFair is DispatchClaim with a per-company cap as well: of the picked deliveries at
-- most per_company per company (or its room, for the companies listed in room_company_ids), and
-- none of skip_company_ids, so that one company's flood or hanging endpoints cannot fill a batch
-- or the dispatcher's memory, and the other companies' deliveries are found and claimed in the
-- same statement. It costs a second window (a sort of the candidates by company), so the
-- dispatcher uses it only when some company is at or near its share (Store.DispatchClaim picks).
-- The two stay apart although they share the lock, update and answer: with per_company at no
-- limit and no rooms, this statement's plan still sorts every candidate by company for the
-- second window (EXPLAIN: a WindowAgg over a Sort on company_id COLLATE "C"), a cost the plain
-- claim does not pay; and without a database function sqlc cannot share the common CTEs.
-- name: DispatchClaimFair :many
WITH cand AS (
    SELECT d.id, d.event_at, d.company_id, d.webhook_id, d.next_attempt_at
    FROM walhook.delivery d
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
      AND (d.lease_until IS NULL OR d.lease_until < now())
      AND d.webhook_id <> ALL (@skip_webhook_ids::bigint[])
      AND d.company_id <> ALL (@skip_company_ids::text[])
    ORDER BY d.next_attempt_at
    LIMIT @scan_limit
), ranked AS (
    SELECT cand.id, cand.event_at, cand.company_id, cand.webhook_id, cand.next_attempt_at,
        row_number() OVER (PARTITION BY cand.webhook_id ORDER BY cand.next_attempt_at, cand.id) AS rn
    FROM cand
), share AS (
    SELECT unnest(@share_webhook_ids::bigint[]) AS webhook_id, unnest(@share_counts::bigint[]) AS n
), shared AS (
    SELECT ranked.id, ranked.event_at, ranked.company_id, ranked.next_attempt_at,
        row_number() OVER (PARTITION BY ranked.company_id COLLATE "C" ORDER BY ranked.next_attempt_at, ranked.id) AS crn
    FROM ranked LEFT JOIN share ON share.webhook_id = ranked.webhook_id
    WHERE ranked.rn <= coalesce(share.n, @per_webhook::bigint)
), room AS (
    SELECT unnest(@room_company_ids::text[]) AS company_id, unnest(@room_counts::bigint[]) AS n
), pick AS MATERIALIZED (
    SELECT shared.id, shared.event_at
    FROM shared LEFT JOIN room ON room.company_id = shared.company_id
    WHERE shared.crn <= coalesce(room.n, @per_company::bigint)
    ORDER BY shared.next_attempt_at
    LIMIT @max_rows
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
    SET lease_until = now() + make_interval(secs => @lease_seconds::float8), leased_by = @lease_token::text
    FROM locked
    WHERE d.id = locked.id AND d.event_at = locked.event_at
    RETURNING d.id, d.event_at, d.company_id, d.webhook_id, d.event_id, d.attempts, d.attempts_base, d.resync_at
)
SELECT claimed.id, claimed.event_at, claimed.company_id, claimed.webhook_id, claimed.event_id, claimed.attempts,
       claimed.attempts_base, claimed.resync_at,
       (CASE WHEN row_number() OVER (PARTITION BY claimed.event_id) = 1 THEN e.payload END)::jsonb AS payload,
       e.captured_at
FROM claimed
JOIN walhook.event e ON e.id = claimed.event_id AND e.occurred_at = claimed.event_at;

-- DispatchRecord writes a batch of attempt results in one statement: an attempt row each (the
-- only copy of the request: the history reads the delivery's request from its latest attempt;
-- a body that is the event's envelope is stored as NULL, see migration 0017), the delivery's new
-- state (only while the claim token still holds its lease, so a resync or a takeover after an
-- expired lease wins), and the webhooks' last sent time and status. last_sent_at and last_status
-- come from one attempt, the newest by finish time: a batch only moves them forward, so a batch
-- written late (another replica's, or a slow one) cannot put an older status beside a newer
-- time. A webhook is turned off when an endpoint answered 410 (gone) or when it has been failing
-- since before failing_cutoff. The webhooks turned off are returned.
-- name: DispatchRecord :many
WITH x AS (
    -- Typed arrays, one element per result, zipped: no JSON to parse. A zero response status
    -- means no answer (no status, no body), an empty error or JSON text means NULL, and
    -- next_attempt_at counts only where has_next.
    SELECT
        unnest(@delivery_ids::bigint[]) AS delivery_id,
        unnest(@event_ats::timestamptz[]) AS event_at,
        unnest(@lease_tokens::text[]) AS lease_token,
        unnest(@company_ids::text[]) AS company_id,
        unnest(@webhook_ids::bigint[]) AS webhook_id,
        unnest(@ns::integer[]) AS n,
        unnest(@started_ats::timestamptz[]) AS started_at,
        unnest(@duration_ms::integer[]) AS duration_ms,
        unnest(@request_methods::text[]) AS request_method,
        unnest(@request_urls::text[]) AS request_url,
        unnest(@request_headers::text[]) AS request_headers,
        unnest(@request_bodies::text[]) AS request_body,
        unnest(@request_body_is_event::boolean[]) AS body_is_event,
        unnest(@response_statuses::integer[]) AS response_status,
        unnest(@response_headers::text[]) AS response_headers,
        unnest(@response_bodies::text[]) AS response_body,
        unnest(@errors::text[]) AS error,
        unnest(@outcomes::text[]) AS outcome,
        unnest(@triggers::text[]) AS trigger,
        unnest(@states::text[]) AS state,
        unnest(@has_next::boolean[]) AS has_next,
        unnest(@next_attempt_ats::timestamptz[]) AS next_attempt_at,
        unnest(@gone::boolean[]) AS gone,
        unnest(@touch_webhook::boolean[]) AS touch_webhook
), r AS (
    SELECT x.delivery_id, x.event_at, x.lease_token, x.company_id, x.webhook_id, x.n, x.started_at, x.duration_ms,
        x.request_method, x.request_url, nullif(x.request_headers, '')::jsonb AS request_headers,
        CASE WHEN x.body_is_event THEN NULL ELSE x.request_body END AS request_body,
        nullif(x.response_status, 0) AS response_status,
        nullif(x.response_headers, '')::jsonb AS response_headers,
        CASE WHEN x.response_status = 0 THEN NULL ELSE x.response_body END AS response_body,
        nullif(x.error, '') AS error, x.outcome, x.trigger, x.state,
        CASE WHEN x.has_next THEN x.next_attempt_at END AS next_attempt_at,
        x.gone, x.touch_webhook
    FROM x
), ins AS (
    INSERT INTO walhook.attempt (delivery_id, event_at, company_id, webhook_id, n, started_at, duration_ms,
        request_method, request_url, request_headers, request_body, response_status,
        response_headers, response_body, error, outcome, trigger)
    SELECT r.delivery_id, r.event_at, r.company_id, r.webhook_id, r.n, r.started_at, r.duration_ms,
        r.request_method, r.request_url, coalesce(r.request_headers, '{}'), r.request_body,
        r.response_status, r.response_headers, r.response_body, r.error, r.outcome, r.trigger
    FROM r
    -- No check that the delivery still exists (before migration 0029 a foreign key made one):
    -- a delivery deleted while it was being sent (its webhook deleted) leaves its last attempt
    -- without a delivery, which nothing reads and its week's drop removes. The check cost more
    -- than the insert: without statistics on a new week's partition (autovacuum had not analyzed
    -- it yet) it scanned the partition, or probed every partition per result.

), upd AS (
    UPDATE walhook.delivery d SET
        state = r.state, attempts = r.n,
        next_attempt_at = coalesce(r.next_attempt_at, d.next_attempt_at),
        lease_until = NULL, leased_by = NULL,
        last_status_code = r.response_status, last_error = r.error, last_attempt_at = r.started_at,
        updated_at = now()
    FROM r
    -- d.id = ANY(delivery_ids): an index condition on each partition's primary key for all the
    -- batch's ids at once (the statement is planned with the batch's values: Store.DispatchRecord).
    WHERE d.id = ANY(@delivery_ids::bigint[]) AND d.id = r.delivery_id AND d.event_at = r.event_at
      AND d.leased_by = r.lease_token
), per_webhook AS (
    SELECT r.webhook_id,
        (array_agg(r.started_at + make_interval(secs => r.duration_ms / 1000.0)
            ORDER BY r.started_at + make_interval(secs => r.duration_ms / 1000.0) DESC))[1] AS last_sent_at,
        (array_agg(r.outcome = 'succeeded'
            ORDER BY r.started_at + make_interval(secs => r.duration_ms / 1000.0) DESC))[1]::boolean AS ok,
        min(r.started_at) FILTER (WHERE r.outcome <> 'succeeded') AS first_failure,
        bool_or(r.gone) AS gone
    FROM r
    WHERE r.touch_webhook
    GROUP BY r.webhook_id
), wh AS (
    -- newer: this batch's newest attempt finished after the one the webhook shows. Only then do
    -- its status and failing streak replace the stored ones.
    SELECT p.webhook_id, p.last_sent_at, p.ok, coalesce(p.gone, false) AS gone,
        (w.last_sent_at IS NULL OR p.last_sent_at >= w.last_sent_at) AS newer,
        CASE
            WHEN NOT (w.last_sent_at IS NULL OR p.last_sent_at >= w.last_sent_at) THEN w.failing_since
            WHEN p.ok THEN NULL
            ELSE coalesce(w.failing_since, p.first_failure) END AS failing_since,
        w.active AS was_active
    FROM per_webhook p
    JOIN walhook.webhook w ON w.id = p.webhook_id
), verdict AS (
    SELECT wh.*, coalesce(wh.failing_since < @failing_cutoff::timestamptz, false) AS failing_too_long
    FROM wh
)
UPDATE walhook.webhook w SET
    last_sent_at = CASE WHEN v.newer THEN v.last_sent_at ELSE w.last_sent_at END,
    last_status = CASE WHEN NOT v.newer THEN w.last_status WHEN v.ok THEN 'succeeded' ELSE 'failed' END,
    failing_since = v.failing_since,
    active = w.active AND NOT (v.gone OR v.failing_too_long),
    disabled_at = CASE WHEN w.active AND (v.gone OR v.failing_too_long) THEN now() ELSE w.disabled_at END,
    disabled_reason = CASE
        WHEN w.active AND v.gone THEN 'The endpoint answered 410 Gone; walhook turned the webhook off.'
        WHEN w.active AND v.failing_too_long
            THEN 'Every delivery has failed since ' || to_char(v.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC; walhook turned the webhook off.'
        ELSE w.disabled_reason END
FROM verdict v
WHERE w.id = v.webhook_id
RETURNING w.id, (v.was_active AND NOT w.active)::boolean AS disabled, v.gone::boolean AS gone;

-- DispatchRateLimits lists the webhooks with a rate limit (webhook_rate_limit_idx), so the
-- dispatcher sizes their claims to what their limit lets it send within a lease.
-- name: DispatchRateLimits :many
SELECT id, rate_limit::integer AS rate_limit FROM walhook.webhook WHERE rate_limit IS NOT NULL;

-- DispatchRateTake takes up to want tokens from each listed webhook's bucket (walhook.rate_bucket,
-- one row per rate-limited webhook shared by every replica) and returns how many it got (taken)
-- and what is left (tokens, a fraction below 1 when it got fewer than it wanted: the next token is
-- due in (1 − tokens) / rate seconds). A bucket is refilled by the time since its last take at
-- rate tokens a second, up to a burst of rate/10 (at least 1); a new one starts full. Concurrent
-- takes of one bucket are serialised by its row lock, and each sees the other's result (READ
-- COMMITTED re-reads the updated row), so the replicas together never take more than the rate plus
-- one burst. The insert's taken carries the wanted count (capped at the burst: no take gets more)
-- into the conflict branch as excluded.taken. Webhooks without a limit get nothing back.
-- name: DispatchRateTake :many
WITH x AS (
    SELECT unnest(@webhook_ids::bigint[]) AS webhook_id, unnest(@wants::integer[]) AS want
)
INSERT INTO walhook.rate_bucket AS b (webhook_id, rate, tokens, refilled_at, taken)
SELECT w.id, w.rate_limit,
    greatest(1, w.rate_limit / 10.0) - least(x.want, floor(greatest(1, w.rate_limit / 10.0))),
    now(), least(x.want, floor(greatest(1, w.rate_limit / 10.0)))::integer
FROM x JOIN walhook.webhook w ON w.id = x.webhook_id
WHERE w.rate_limit IS NOT NULL AND x.want > 0
ON CONFLICT (webhook_id) DO UPDATE SET
    rate = excluded.rate,
    tokens = least(greatest(1, excluded.rate / 10.0),
            b.tokens + excluded.rate * greatest(0, extract(epoch FROM now() - b.refilled_at)))
        - least(excluded.taken, floor(least(greatest(1, excluded.rate / 10.0),
            b.tokens + excluded.rate * greatest(0, extract(epoch FROM now() - b.refilled_at))))),
    taken = least(excluded.taken, floor(least(greatest(1, excluded.rate / 10.0),
            b.tokens + excluded.rate * greatest(0, extract(epoch FROM now() - b.refilled_at)))))::integer,
    refilled_at = greatest(b.refilled_at, now())
RETURNING b.webhook_id, b.taken, b.tokens, b.rate;

-- DispatchRelease gives leased deliveries back without an attempt (for example on shutdown), so
-- any replica can claim them at once.
-- name: DispatchRelease :execrows
UPDATE walhook.delivery d SET lease_until = NULL, leased_by = NULL
WHERE d.id = ANY(@ids::bigint[]) AND d.leased_by = ANY(@lease_tokens::text[]);

-- DispatchReleaseReplicas releases the claims of replicas found dead (ReplicaReap), or of a
-- replica stopping cleanly: their pending deliveries' leases end now, so any replica claims them
-- at once. A claim names its replica as the prefix of its token ('<replica id>:<n>'). leased_by
-- is kept: should the replica only have been paused, a result it still records counts as long as
-- no other replica has claimed the delivery since (DispatchRecord matches the token). Leased
-- deliveries are always due (a claim takes only due ones, and the result that reschedules one
-- also ends its lease), so the scan is the due range of delivery_due_idx: no index of its own,
-- and it runs only when a replica died.
-- name: DispatchReleaseReplicas :execrows
UPDATE walhook.delivery d SET lease_until = NULL
WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND d.lease_until > now()
  AND EXISTS (SELECT 1 FROM unnest(@replica_ids::text[]) AS r(id) WHERE starts_with(d.leased_by, r.id || ':'));

-- DispatchWebhooks loads the webhooks of claimed deliveries for the dispatcher's cache, with
-- whether their company is disabled (the platform API).
-- name: DispatchWebhooks :many
SELECT sqlc.embed(w), (c.disabled_at IS NOT NULL)::boolean AS company_disabled
FROM walhook.webhook w JOIN walhook.company c ON c.id = w.company_id
WHERE w.id = ANY(@ids::bigint[]);

-- DispatchOAuthCredentials loads the OAuth credentials of cached webhooks.
-- name: DispatchOAuthCredentials :many
SELECT * FROM walhook.oauth_credential WHERE id = ANY(@ids::bigint[]);

-- DispatchOAuthTokenSave keeps a fetched token (and a newly issued refresh token) so every replica
-- and the next start reuse it; an authorization code can be exchanged only once. It does nothing
-- when the credential was changed since it was read (updated_at differs).
-- name: DispatchOAuthTokenSave :execrows
UPDATE walhook.oauth_credential SET
    access_token_enc = sqlc.narg('access_token_enc'),
    refresh_token_enc = coalesce(sqlc.narg('refresh_token_enc'), refresh_token_enc),
    token_expires_at = sqlc.narg('token_expires_at')
WHERE id = @id AND updated_at = @updated_at;

-- DispatchQueueStats is the queue depth for the metrics: pending deliveries due now, scheduled
-- for later, and leased (being sent), and the age of the oldest due one.
-- name: DispatchQueueStats :one
SELECT
    count(*) FILTER (WHERE d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now()))::bigint AS due,
    count(*) FILTER (WHERE d.next_attempt_at > now() AND (d.lease_until IS NULL OR d.lease_until < now()))::bigint AS scheduled,
    count(*) FILTER (WHERE d.lease_until >= now())::bigint AS leased,
    coalesce(extract(epoch FROM now() - min(d.next_attempt_at) FILTER (WHERE d.next_attempt_at <= now())), 0)::float8 AS oldest_due_seconds
FROM walhook.delivery d
WHERE d.state = 'pending';

-- name: DispatchListen :exec
LISTEN walhook_deliveries;

-- name: DispatchListenWebhooks :exec
LISTEN walhook_webhooks;

-- DispatchEventInsert stores an event for storetest.Enqueue (tests only; capture stores events in
-- its batched CaptureCommit). A replayed (source_key, occurred_at) returns the existing event.
-- name: DispatchEventInsert :one
INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
VALUES (@source_key, @company_id, @event_key, @payload, @occurred_at)
ON CONFLICT (source_key, occurred_at) DO UPDATE SET source_key = excluded.source_key
RETURNING id;
