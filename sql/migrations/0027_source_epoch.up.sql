-- Source epochs (issue 17): walhook's database can outlive the application's.
--
-- A source key ("wal:<commit LSN>:…", "outbox:<id>") names a position in the application's
-- database, unique only within one history of it. When that database is replaced (restored from
-- pg_dump into a new cluster, reset, restored to an earlier point, upgraded), positions start
-- over or are reused, and a new event whose key equals a stored one would be dropped as a replay.
-- capture therefore counts the histories it has read through a slot: the epoch. Capture starts a
-- new one (epoch + 1, the stored position forgotten: lsn 0/0) when a session finds the source to
-- be another cluster (system_id differs), the slot gone while a position was stored, or the
-- stored position beyond the source's WAL; and `walhook slot recreate` starts one explicitly.
-- Source keys of epoch N > 0 carry it ("e<N>:wal:…", "e<N>:outbox:…"); epoch 0 keeps the keys
-- of before, so nothing changes for existing installations. The epoch never goes back: the row
-- is never deleted (`walhook slot drop` leaves it). See "Source epochs" in relay/capture/doc.go.
--
-- system_id '' is unknown (a row `walhook slot recreate` made before capture ever stored one):
-- capture adopts the source's at its next commit without starting another epoch.
ALTER TABLE walhook.capture_position
    ADD COLUMN epoch            int         NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    ADD COLUMN epoch_reason     text        NOT NULL DEFAULT '',
    ADD COLUMN epoch_started_at timestamptz;
