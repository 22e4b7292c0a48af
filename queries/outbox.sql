-- OutboxClaim locks the oldest outbox rows no other poller holds; the caller deletes them with
-- CaptureCommit in the same transaction.
-- name: OutboxClaim :many
SELECT id, company_id, event_key, payload, created_at
FROM walhook.outbox
ORDER BY id
LIMIT @max_rows::int
FOR UPDATE SKIP LOCKED;
