-- OutboxClaim locks the oldest outbox rows no other poller holds; the caller deletes them with
-- CaptureCommit (one database) or OutboxDelete (two) in the same transaction.
-- name: OutboxClaim :many
SELECT id, company_id, event_key, payload, created_at
FROM walhook.outbox
ORDER BY id
LIMIT @max_rows::int
FOR UPDATE SKIP LOCKED;

-- OutboxDelete deletes consumed outbox rows in the application's database when walhook keeps its
-- own apart (their events are committed in walhook's database first). Idempotent: it returns the
-- rows it found.
-- name: OutboxDelete :many
DELETE FROM walhook.outbox WHERE id = ANY(@ids::bigint[]) RETURNING id;
