-- Forgets the source epochs: events captured from now on get the keys of epoch 0 again, which an
-- earlier history of the source may have used.
ALTER TABLE walhook.capture_position
    DROP COLUMN epoch_started_at,
    DROP COLUMN epoch_reason,
    DROP COLUMN epoch;
