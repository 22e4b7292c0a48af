-- DeliveryHistoryList lists a webhook's deliveries, newest first, with optional state and
-- created_at range filters; the cursor is the (created_at, id) of the last row of the previous page.
-- The event's public id is its envelope's id ('' when the envelope has none); last_url is the URL
-- the latest attempt was sent to ('' before the first), not the webhook's URL of today.
-- name: DeliveryHistoryList :many
SELECT d.id, d.webhook_id, d.event_id, d.event_key, d.state, d.attempts, d.next_attempt_at,
       d.last_status_code, d.last_error, d.last_attempt_at, d.created_at, d.updated_at,
       coalesce((SELECT e.payload ->> 'id' FROM walhook.event e WHERE e.id = d.event_id), '')::text AS event_public_id,
       coalesce((SELECT a.request_url FROM walhook.attempt a WHERE a.delivery_id = d.id
                 ORDER BY a.n DESC, a.id DESC LIMIT 1), '')::text AS last_url
FROM walhook.delivery d
WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id
  AND (sqlc.narg('state')::text IS NULL OR d.state = sqlc.narg('state'))
  AND (sqlc.narg('since')::timestamptz IS NULL OR d.created_at >= sqlc.narg('since'))
  AND (sqlc.narg('until')::timestamptz IS NULL OR d.created_at < sqlc.narg('until'))
  AND (sqlc.narg('before_at')::timestamptz IS NULL
       OR (d.created_at, d.id) < (sqlc.narg('before_at')::timestamptz, @before_id::bigint))
ORDER BY d.created_at DESC, d.id DESC
LIMIT @max_rows;

-- DeliveryHistoryTotals counts a webhook's deliveries by state in an optional created_at range.
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
        FROM walhook.attempt a WHERE a.delivery_id = d.id
        ORDER BY a.id DESC LIMIT 1)::jsonb AS request,
       d.last_status_code, d.last_error, d.last_attempt_at,
       d.created_at, d.updated_at, e.payload AS event_payload, e.occurred_at AS event_occurred_at,
       coalesce(e.payload ->> 'id', '')::text AS event_public_id
FROM walhook.delivery d
JOIN walhook.event e ON e.id = d.event_id
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
WHERE id IN (
    SELECT d.id FROM walhook.delivery d
    WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id AND d.state = 'failed'
      AND d.created_at >= @since AND d.created_at < @until
    ORDER BY d.created_at, d.id
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
);

-- DeliveriesChangedNotify wakes the dispatchers when the surrounding transaction commits.
-- name: DeliveriesChangedNotify :exec
SELECT pg_notify('walhook_deliveries', '');

-- EventLatestPayload is the envelope of a company's newest event of a type, for test sends.
-- name: EventLatestPayload :one
SELECT payload FROM walhook.event
WHERE company_id = @company_id AND event_key = @event_key
ORDER BY id DESC
LIMIT 1;
