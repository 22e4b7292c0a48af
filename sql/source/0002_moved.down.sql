-- Only in a database the source set alone migrated: in one the main set migrated too, the
-- columns belong to main migration 0025 and stay.
DO $$
BEGIN
    IF to_regclass('walhook.schema_migration') IS NULL THEN
        ALTER TABLE walhook.capture_setting DROP COLUMN IF EXISTS moved_to, DROP COLUMN IF EXISTS moved_at;
    END IF;
END
$$;
