-- History search and replay of a window (issue 15). Figures: one run of a throwaway measurement
-- on 100k-400k events, 20 companies (numbers in the commit that added this file).
--
-- Search by event id. The public event id ("evt_…", the envelope's "id") is a keyed digest of the
-- event's source position (relay/crypt IDCipher.Digest): no row id can be computed from it, so
-- finding an event by it is a lookup on the envelope's id. Without this index the lookup reads
-- every event of the company (20,000 events: 145 ms, 18,000 pages, cold); with it, one probe
-- (0.05 ms, 7 pages), then the delivery through UNIQUE (event_id, webhook_id). company_id leads,
-- so a lookup only ever sees its own tenant's events. Cost: one entry per captured event
-- (~84 bytes), nothing per delivery or attempt.
CREATE INDEX IF NOT EXISTS event_public_id_idx ON walhook.event (company_id, (payload ->> 'id'));

-- Replay a window: "every event of these types from T1 to T2", by the event's occurred_at (the
-- time its envelope states). event_company_key_idx (company_id, event_key, id DESC) orders by id,
-- so a window reads every event of the type and filters (a day of 10,000: 43 ms, 10,000 pages);
-- ordered by occurred_at it reads the window only (0.8-3 ms, 170 pages). The old index served one
-- query, the newest event of a type for test sends (EventLatestPayload), which this one serves
-- too (ordered by occurred_at, id), so it replaces it: the event table keeps its index count
-- but for the event-id one above.
--
-- Both are built without CONCURRENTLY (a migration runs in a transaction), which holds capture's
-- inserts while the event table is indexed. On a large table, create them beforehand with
-- CREATE INDEX CONCURRENTLY and the same names and definitions: IF NOT EXISTS then skips them.
CREATE INDEX IF NOT EXISTS event_company_key_time_idx ON walhook.event (company_id, event_key, occurred_at, id);
DROP INDEX IF EXISTS walhook.event_company_key_idx;
