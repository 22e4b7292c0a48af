-- History retention. Each statement deletes at most one small batch and runs in its own short
-- transaction, so it never holds locks for long and never blocks capture or dispatch: rows another
-- session has locked (a delivery being claimed, an event a new delivery references) are skipped
-- and picked up by a later run.

-- RetentionTryLock takes the session advisory lock that lets one replica at a time run retention.
-- name: RetentionTryLock :one
SELECT pg_try_advisory_lock(hashtextextended('walhook.retention', 0)) AS locked;

-- name: RetentionUnlock :one
SELECT pg_advisory_unlock(hashtextextended('walhook.retention', 0)) AS unlocked;

-- RetentionDeleteDeliveries deletes up to batch_size finished (succeeded or failed) deliveries
-- created and last changed before cutoff; their attempts go with them (ON DELETE CASCADE).
-- Pending deliveries are work still to do and are never deleted. The candidates come from the
-- BRIN index on created_at (migration 0018) in no particular order: every batch deletes rows
-- past the cutoff, and the next run takes the rest.
-- name: RetentionDeleteDeliveries :execrows
DELETE FROM walhook.delivery
WHERE id IN (
    SELECT d.id FROM walhook.delivery d
    WHERE d.created_at < @cutoff AND d.updated_at < @cutoff AND d.state <> 'pending'
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);

-- RetentionDeleteEvents deletes up to batch_size events captured before cutoff that no delivery
-- references any more (candidates from the BRIN index on captured_at, in no particular order).
-- name: RetentionDeleteEvents :execrows
DELETE FROM walhook.event
WHERE id IN (
    SELECT e.id FROM walhook.event e
    WHERE e.captured_at < @cutoff
      AND NOT EXISTS (SELECT 1 FROM walhook.delivery d WHERE d.event_id = e.id)
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);
