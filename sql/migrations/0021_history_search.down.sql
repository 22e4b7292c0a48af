CREATE INDEX IF NOT EXISTS event_company_key_idx ON walhook.event (company_id, event_key, id DESC);
DROP INDEX IF EXISTS walhook.event_company_key_time_idx;
DROP INDEX IF EXISTS walhook.event_public_id_idx;
