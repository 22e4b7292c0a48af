-- Removes capture's objects from the application's database, unless the main migration set
-- also lives in it (one database for both: those objects are the main set's to remove).
DO $$
BEGIN
    IF to_regclass('walhook.schema_migration') IS NOT NULL THEN
        RETURN;
    END IF;
    DROP FUNCTION IF EXISTS walhook.emit(text, text, jsonb);
    DROP TABLE IF EXISTS walhook.emit_key;
    DROP TABLE IF EXISTS walhook.capture_setting;
    DROP TABLE IF EXISTS walhook.outbox;
    DROP FUNCTION IF EXISTS walhook.outbox_notify();
END
$$;
