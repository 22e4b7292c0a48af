-- CaptureQuarantineAdd sets an event aside; a source key already quarantined (a replay) adds
-- nothing.
-- name: CaptureQuarantineAdd :execrows
INSERT INTO walhook.capture_quarantine (source_key, company_id, event_key, payload, occurred_at, sqlstate, reason)
VALUES (@source_key, @company_id, @event_key, @payload, @occurred_at, @sqlstate, @reason)
ON CONFLICT (source_key) DO NOTHING;

-- name: CaptureQuarantineList :many
SELECT id, source_key, company_id, event_key, octet_length(payload)::bigint AS payload_bytes, occurred_at,
    sqlstate, reason, first_seen_at, last_tried_at, attempts
FROM walhook.capture_quarantine
WHERE id > @after_id
ORDER BY id
LIMIT @row_limit;

-- name: CaptureQuarantineGet :one
SELECT id, source_key, company_id, event_key, payload, occurred_at, sqlstate, reason, first_seen_at,
    last_tried_at, attempts
FROM walhook.capture_quarantine WHERE id = @id;

-- CaptureQuarantineLock reads a quarantined event for a retry and holds it until the retry's
-- transaction ends, so two operators' retries do not both store it.
-- name: CaptureQuarantineLock :one
SELECT id, source_key, company_id, event_key, payload, occurred_at
FROM walhook.capture_quarantine WHERE id = @id
FOR UPDATE;

-- CaptureQuarantineFailed records a failed retry.
-- name: CaptureQuarantineFailed :exec
UPDATE walhook.capture_quarantine
SET attempts = attempts + 1, last_tried_at = now(), sqlstate = @sqlstate, reason = @reason
WHERE id = @id;

-- name: CaptureQuarantineDelete :execrows
DELETE FROM walhook.capture_quarantine WHERE id = @id;

-- name: CaptureQuarantineCount :one
SELECT count(*)::bigint FROM walhook.capture_quarantine;
