ALTER TABLE walhook.audit_log DROP COLUMN IF EXISTS actor;
ALTER TABLE walhook.company DROP COLUMN IF EXISTS disabled_at;
DROP TABLE IF EXISTS walhook.platform_token;
