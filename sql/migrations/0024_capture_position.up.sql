-- Where capture stands in the source, stored with the events (issue 17).
--
-- With walhook's own database apart from the application's, capture commits events in this
-- database and then acknowledges the slot in the source: a crash between the two leaves the slot
-- behind what is stored. The position CaptureCommit stores in the same statement as the events
-- (the end LSN of the batch's last source transaction, never moved back) is where the next
-- stream starts (START_REPLICATION at it, and the decoder skips transactions that end at or
-- before it). system_id is the source cluster's IDENTIFY_SYSTEM identifier: a position of
-- another cluster (a restored or replaced source) is ignored, never used to skip events.
-- Stored in both modes, by the same statement.
CREATE TABLE walhook.capture_position (
    slot        text        PRIMARY KEY,
    system_id   text        NOT NULL,
    lsn         pg_lsn      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
