ALTER TABLE walhook.capture_setting DROP COLUMN moved_to, DROP COLUMN moved_at;
