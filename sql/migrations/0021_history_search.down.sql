DROP INDEX IF EXISTS walhook.event_company_key_time_idx;
DROP INDEX IF EXISTS walhook.event_public_id_idx;
