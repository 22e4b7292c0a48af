CREATE INDEX attempt_started_idx ON walhook.attempt (started_at);
ALTER TABLE walhook.delivery RESET (fillfactor);
