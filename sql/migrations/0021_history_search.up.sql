-- History search and replay of a window (issue 15).
--
-- Search by event id. The public event id ("evt_…", the envelope's "id") is a keyed digest of the
-- event's source position (relay/crypt IDCipher.Digest): it cannot be turned back into a row id,
-- so finding an event by it is a lookup on the envelope's id. Without this index that lookup reads
-- every event of the platform; with it, one index probe (then the delivery is found through the
-- UNIQUE (event_id, webhook_id) index). company_id leads so a lookup can only ever see its own
-- tenant's events. Measured: see docs/history.md ("Search").
CREATE INDEX event_public_id_idx ON walhook.event (company_id, (payload ->> 'id'));

-- Replay a window: "every event of these types from T1 to T2", by the event's occurred_at (the
-- time its envelope states). event_company_key_idx (company_id, event_key, id DESC) orders by id,
-- so a window in the past would walk every newer event of the type first; this one reads the
-- window only. Both indexes cost one entry per captured event, nothing per delivery or attempt.
CREATE INDEX event_company_key_time_idx ON walhook.event (company_id, event_key, occurred_at);
