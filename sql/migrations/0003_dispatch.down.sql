DROP TRIGGER IF EXISTS delivery_resync_mark ON walhook.delivery;
DROP FUNCTION IF EXISTS walhook.delivery_resync_mark();
ALTER TABLE walhook.delivery
    DROP COLUMN IF EXISTS resync_at,
    DROP COLUMN IF EXISTS attempts_base;
