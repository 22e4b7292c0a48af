-- Back to one trigger event per webhook: each keeps its first.
DROP TRIGGER webhook_event_keys_fkey ON walhook.webhook;
DROP FUNCTION walhook.webhook_event_keys_check();
ALTER TABLE walhook.webhook ADD COLUMN event_key text REFERENCES walhook.event_type (key);
UPDATE walhook.webhook SET event_key = event_keys[1];
ALTER TABLE walhook.webhook ALTER COLUMN event_key SET NOT NULL;
DROP INDEX walhook.webhook_active_company_idx;
ALTER TABLE walhook.webhook DROP COLUMN event_keys;
CREATE INDEX webhook_active_idx ON walhook.webhook (company_id, event_key) WHERE active;
