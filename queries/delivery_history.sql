-- DeliveryHistoryList lists a webhook's deliveries, newest first; the cursor is the (created_at, id)
-- of the last row of the previous page. The event's public id is its envelope's id ('' when the
-- envelope has none); last_url is the URL the latest attempt was sent to ('' before the first), not
-- the webhook's URL of today.
--
-- Filters (NULL: not filtered):
--   state               the delivery's state;
--   event_key           one of the webhook's trigger events;
--   delivery_ids        the deliveries of one public event id (DeliveryHistoryFindByEvent; the caller
--                       also narrows since/until to their created_at, so the index range is tiny);
--   status_min/max      last HTTP status in [min, max] (404: 404..404, 5xx: 500..599);
--   no_response         at least one attempt and no HTTP status (refused, timed out, …);
--   since/until         created_at in [since, until);
--   text                a case-insensitive substring of the event's envelope (jsonb text form).
--
-- The text filter reads envelopes, so it is bounded: "scanned" takes at most scan_rows rows that
-- pass the other filters (an index range of delivery_webhook_time_idx), and only those are searched.
-- Each answered row says whether it matched (matched), and the oldest scanned row is always
-- answered (scan_end) with how many rows were scanned, so the caller can tell "no more rows" from
-- "stopped looking here" and continue from there. Without a text filter the caller passes
-- scan_rows = max_rows and every scanned row matches.
--
-- Run as an unnamed statement (store.customPlan): with NULL filters folded away by the planner it
-- reads delivery_webhook_time_idx newest first and stops at the LIMIT. A generic plan of a
-- prepared statement cannot fold them, estimates one row and reads the webhook's whole history,
-- or the whole table, before sorting (measured: 100,000 rows read for a first page of 51).
-- name: DeliveryHistoryList :many
WITH scanned AS (
    SELECT d.id, d.event_at, d.created_at, d.event_id
    FROM walhook.delivery d
    WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id
      AND (sqlc.narg('state')::text IS NULL OR d.state = sqlc.narg('state'))
      AND (sqlc.narg('event_key')::text IS NULL OR d.event_key = sqlc.narg('event_key'))
      AND (sqlc.narg('delivery_ids')::bigint[] IS NULL OR d.id = ANY(sqlc.narg('delivery_ids')::bigint[]))
      AND (sqlc.narg('status_min')::integer IS NULL
           OR d.last_status_code BETWEEN sqlc.narg('status_min')::integer AND sqlc.narg('status_max')::integer)
      AND (NOT @no_response::boolean OR (d.last_status_code IS NULL AND d.attempts > 0))
      AND (sqlc.narg('since')::timestamptz IS NULL OR d.created_at >= sqlc.narg('since'))
      AND (sqlc.narg('until')::timestamptz IS NULL OR d.created_at < sqlc.narg('until'))
      AND (sqlc.narg('before_at')::timestamptz IS NULL
           OR (d.created_at, d.id) < (sqlc.narg('before_at')::timestamptz, @before_id::bigint))
    ORDER BY d.created_at DESC, d.id DESC
    LIMIT @scan_rows
), checked AS (
    SELECT s.id, s.event_at, s.created_at,
           (sqlc.narg('text')::text IS NULL OR EXISTS (
               SELECT 1 FROM walhook.event e
               WHERE e.id = s.event_id AND e.occurred_at = s.event_at AND e.company_id = @company_id
                 AND strpos(lower(e.payload::text), lower(sqlc.narg('text')::text)) > 0))::boolean AS matched
    FROM scanned s
), ranked AS (
    SELECT c.id, c.event_at, c.matched,
           count(*) FILTER (WHERE c.matched) OVER newest AS hit_n,
           (row_number() OVER newest = count(*) OVER ())::boolean AS scan_end,
           count(*) OVER () AS scanned
    FROM checked c
    WINDOW newest AS (ORDER BY c.created_at DESC, c.id DESC)
)
SELECT d.id, d.webhook_id, d.event_id, d.event_key, d.state, d.attempts, d.next_attempt_at,
       d.last_status_code, d.last_error, d.last_attempt_at, d.created_at, d.updated_at,
       coalesce((SELECT e.payload ->> 'id' FROM walhook.event e
                 WHERE e.id = d.event_id AND e.occurred_at = d.event_at), '')::text AS event_public_id,
       coalesce((SELECT a.request_url FROM walhook.attempt a WHERE a.delivery_id = d.id AND a.event_at = d.event_at
                 ORDER BY a.n DESC, a.id DESC LIMIT 1), '')::text AS last_url,
       r.matched, r.scan_end, r.scanned::bigint AS scanned
FROM ranked r
JOIN walhook.delivery d ON d.id = r.id AND d.event_at = r.event_at AND d.company_id = @company_id
WHERE (r.matched AND r.hit_n <= @max_rows::bigint) OR r.scan_end
ORDER BY d.created_at DESC, d.id DESC;

-- DeliveryHistoryFindByEvent finds a webhook's deliveries of the event with a public id ("evt_…",
-- the envelope's id): one probe of event_public_id_idx, then UNIQUE (event_id, webhook_id, event_at). The
-- public id is a keyed digest, so there is no row id to compute from it.
-- name: DeliveryHistoryFindByEvent :many
SELECT d.id, d.created_at
FROM walhook.event e
JOIN walhook.delivery d ON d.event_id = e.id AND d.event_at = e.occurred_at AND d.webhook_id = @webhook_id
    AND d.company_id = e.company_id
WHERE e.company_id = @company_id AND (e.payload ->> 'id') = @event_public_id::text
LIMIT 10;

-- DeliveryHistoryTotals counts a webhook's deliveries by state in an optional created_at range
-- (run as an unnamed statement too, for the same reason).
-- name: DeliveryHistoryTotals :one
SELECT count(*)::bigint AS triggered,
       count(*) FILTER (WHERE d.state = 'succeeded')::bigint AS succeeded,
       count(*) FILTER (WHERE d.state = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE d.state = 'pending')::bigint AS pending
FROM walhook.delivery d
WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id
  AND (sqlc.narg('since')::timestamptz IS NULL OR d.created_at >= sqlc.narg('since'))
  AND (sqlc.narg('until')::timestamptz IS NULL OR d.created_at < sqlc.narg('until'));

-- DeliveryHistorySeries buckets a webhook's deliveries by created_at (bucket: hour or day).
-- name: DeliveryHistorySeries :many
SELECT date_trunc(@bucket::text, d.created_at)::timestamptz AS at,
       count(*)::bigint AS triggered,
       count(*) FILTER (WHERE d.state = 'succeeded')::bigint AS succeeded,
       count(*) FILTER (WHERE d.state = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE d.state = 'pending')::bigint AS pending
FROM walhook.delivery d
WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id
  AND d.created_at >= @since AND d.created_at < @until
GROUP BY 1
ORDER BY 1;

-- DeliveryHistoryGet returns one delivery of a company with its event's envelope and the request
-- as last built (its latest attempt's; NULL before the first attempt).
-- name: DeliveryHistoryGet :one
SELECT d.id, d.webhook_id, d.event_id, d.event_key, d.state, d.attempts, d.next_attempt_at,
       d.lease_until,
       (SELECT jsonb_build_object('method', a.request_method, 'url', a.request_url,
                                  'headers', a.request_headers, 'body', coalesce(a.request_body, e.payload::text))
        FROM walhook.attempt a WHERE a.delivery_id = d.id AND a.event_at = d.event_at
        ORDER BY a.id DESC LIMIT 1)::jsonb AS request,
       d.last_status_code, d.last_error, d.last_attempt_at,
       d.created_at, d.updated_at, e.payload AS event_payload, e.occurred_at AS event_occurred_at,
       coalesce(e.payload ->> 'id', '')::text AS event_public_id
FROM walhook.delivery d
JOIN walhook.event e ON e.id = d.event_id AND e.occurred_at = d.event_at
WHERE d.company_id = @company_id AND d.id = @id;

-- DeliveryHistoryAttempts lists a delivery's attempts. body_is_event: the request body was the
-- event's envelope (stored as NULL; the caller has the envelope).
-- name: DeliveryHistoryAttempts :many
SELECT a.id, a.n, a.started_at, a.duration_ms, a.request_method, a.request_url, a.request_headers,
       coalesce(a.request_body, '')::text AS request_body, (a.request_body IS NULL)::boolean AS body_is_event,
       a.response_status, a.response_headers, a.response_body, a.error, a.outcome,
       a.trigger
FROM walhook.attempt a
WHERE a.company_id = @company_id AND a.delivery_id = @delivery_id
ORDER BY a.n, a.id;

-- DeliveryResync puts one delivery of a company back in the queue, due now: the same event, the
-- same payload and the same webhook-id. A delivery being sent right now (pending with a live
-- lease) is left alone and matches nothing.
-- name: DeliveryResync :one
UPDATE walhook.delivery SET
    state = 'pending', next_attempt_at = now(), lease_until = NULL, leased_by = NULL, updated_at = now()
WHERE company_id = @company_id AND id = @id
  AND NOT (state = 'pending' AND lease_until IS NOT NULL AND lease_until > now())
RETURNING id;

-- DeliveryResyncFailed puts up to max_rows failed deliveries of a webhook created in
-- [since, until) back in the queue, oldest first, and answers how many.
-- name: DeliveryResyncFailed :execrows
UPDATE walhook.delivery SET
    state = 'pending', next_attempt_at = now(), lease_until = NULL, leased_by = NULL, updated_at = now()
WHERE (id, event_at) IN (
    SELECT d.id, d.event_at FROM walhook.delivery d
    WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id AND d.state = 'failed'
      AND d.created_at >= @since AND d.created_at < @until
    ORDER BY d.created_at, d.id
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
);

-- DeliveriesChangedNotify wakes the dispatchers when the surrounding transaction commits.
-- name: DeliveriesChangedNotify :exec
SELECT pg_notify('walhook_deliveries', '');

-- EventLatestPayload is the envelope of a company's newest event of a type, for test sends
-- (event_company_key_time_idx, read backwards).
-- name: EventLatestPayload :one
SELECT payload FROM walhook.event
WHERE company_id = @company_id AND event_key = @event_key
ORDER BY occurred_at DESC, id DESC
LIMIT 1;

-- Replay a window: send again the events of a webhook's trigger events (event_keys, one array
-- filled from the webhook) that occurred in [since, until), including events from before the
-- webhook existed or while it was off. mode:
--   all         every such event, except those with a delivery already pending (not queued twice);
--   failed      the events whose delivery to this webhook ended failed;
--   never_sent  the events with no delivery to this webhook.
-- The events are read through event_company_key_time_idx (migration 0021); a delivery through
-- UNIQUE (event_id, webhook_id, event_at).

-- DeliveryReplayCount counts, up to max_rows, what a replay of mode would queue; changes nothing.
-- name: DeliveryReplayCount :one
SELECT count(*)::bigint AS n FROM (
    SELECT 1
    FROM walhook.event e
    LEFT JOIN walhook.delivery d
           ON d.event_id = e.id AND d.event_at = e.occurred_at AND d.webhook_id = @webhook_id
          AND d.company_id = e.company_id
    WHERE e.company_id = @company_id AND e.event_key = ANY(@event_keys::text[])
      AND e.occurred_at >= @since AND e.occurred_at < @until
      AND CASE @mode::text
            WHEN 'all' THEN d.id IS NULL OR d.state <> 'pending'
            WHEN 'failed' THEN d.state = 'failed'
            WHEN 'never_sent' THEN d.id IS NULL
            ELSE false
          END
    LIMIT @max_rows
) x;

-- DeliveryReplayInsert creates a pending delivery, due now, for up to max_rows events of the
-- window that have none to this webhook (modes all and never_sent), oldest first. resync_at is
-- set as a resync sets it, so the attempts say trigger = 'resync' (not fan-out) and the
-- capture-to-first-attempt latency metric leaves these old events out.
-- name: DeliveryReplayInsert :execrows
INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, resync_at)
SELECT e.company_id, w.id, e.id, e.occurred_at, e.event_key, now()
FROM walhook.event e
JOIN walhook.webhook w ON w.company_id = e.company_id AND w.id = @webhook_id
WHERE e.company_id = @company_id AND e.event_key = ANY(@event_keys::text[])
  AND e.occurred_at >= @since AND e.occurred_at < @until
  AND NOT EXISTS (SELECT 1 FROM walhook.delivery d
                  WHERE d.event_id = e.id AND d.event_at = e.occurred_at AND d.webhook_id = w.id)
ORDER BY e.occurred_at, e.id
LIMIT @max_rows
ON CONFLICT (event_id, webhook_id, event_at) DO NOTHING;

-- DeliveryReplayResync puts up to max_rows finished deliveries to this webhook of the window's
-- events back in the queue, due now (mode all: succeeded or failed; failed_only: failed). A
-- pending delivery is left alone, so a second click queues nothing twice; rows another
-- transaction holds are skipped.
-- name: DeliveryReplayResync :execrows
UPDATE walhook.delivery SET
    state = 'pending', next_attempt_at = now(), lease_until = NULL, leased_by = NULL, updated_at = now()
WHERE (id, event_at) IN (
    SELECT d.id, d.event_at
    FROM walhook.event e
    JOIN walhook.delivery d
      ON d.event_id = e.id AND d.event_at = e.occurred_at AND d.webhook_id = @webhook_id
     AND d.company_id = e.company_id
    WHERE e.company_id = @company_id AND e.event_key = ANY(@event_keys::text[])
      AND e.occurred_at >= @since AND e.occurred_at < @until
      AND d.state <> 'pending' AND (NOT @failed_only::boolean OR d.state = 'failed')
    ORDER BY e.occurred_at, e.id
    LIMIT @max_rows
    FOR UPDATE OF d SKIP LOCKED
);
