-- OutboxClaim locks the oldest outbox rows no other poller holds; the caller deletes them with
-- CaptureCommit (one database) or OutboxDelete (two) in the same transaction. payload_bytes is
-- the payload's size as text; a payload larger than max_payload_bytes is not sent (NULL), so a
-- huge row never reaches the relay's memory.
-- name: OutboxClaim :many
SELECT o.id, o.company_id, o.event_key,
    (CASE WHEN s.payload_bytes <= @max_payload_bytes::bigint THEN o.payload END)::jsonb AS payload,
    s.payload_bytes,
    -- The event's time (capture.outboxTime gives the stream's rows the same): ±infinity, which
    -- a time.Time cannot hold, clamped to the first and the last day it and PostgreSQL both do.
    least(greatest(o.created_at, '0001-01-01 00:00:00+00'::timestamptz), '9999-12-31 00:00:00+00'::timestamptz)::timestamptz AS created_at
FROM walhook.outbox o
CROSS JOIN LATERAL (SELECT octet_length(o.payload::text)::bigint AS payload_bytes) s
ORDER BY o.id
LIMIT @max_rows::int
FOR UPDATE OF o SKIP LOCKED;

-- OutboxDelete deletes consumed outbox rows in the application's database when walhook keeps its
-- own apart (their events are committed in walhook's database first). Idempotent: it returns the
-- rows it found.
-- name: OutboxDelete :many
DELETE FROM walhook.outbox WHERE id = ANY(@ids::bigint[]) RETURNING id;
