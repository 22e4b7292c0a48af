-- Capture: the mode walhook.emit follows, and a wake-up for outbox pollers.

-- capture_setting is a single row the relay writes at start. mode is 'wal' (logical replication:
-- walhook.emit writes a transactional logical message) or 'poll' (no replication rights:
-- walhook.emit inserts an outbox row instead, which the poller claims).
CREATE TABLE walhook.capture_setting (
    id          boolean     PRIMARY KEY DEFAULT true CHECK (id),
    mode        text        NOT NULL DEFAULT 'wal' CHECK (mode IN ('wal', 'poll')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO walhook.capture_setting DEFAULT VALUES;

-- Outbox pollers LISTEN on walhook_outbox; one notification per inserting statement (PostgreSQL
-- folds duplicates within a transaction), delivered at commit.
CREATE FUNCTION walhook.outbox_notify() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('walhook_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON walhook.outbox
    FOR EACH STATEMENT
    EXECUTE FUNCTION walhook.outbox_notify();

-- walhook.emit in both modes. WAL mode: a transactional logical message (no table to vacuum);
-- it returns the message's LSN. Poll mode: an outbox row; it returns NULL. Either way a rolled-back
-- transaction emits nothing.
CREATE OR REPLACE FUNCTION walhook.emit(company_id text, event text, payload jsonb DEFAULT '{}')
RETURNS pg_lsn
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    IF (SELECT s.mode FROM walhook.capture_setting s) = 'poll' THEN
        INSERT INTO walhook.outbox (company_id, event_key, payload)
        VALUES (emit.company_id, emit.event, coalesce(emit.payload, '{}'));
        RETURN NULL;
    END IF;
    RETURN pg_logical_emit_message(
        true,
        'walhook',
        jsonb_build_object('company_id', emit.company_id, 'event', emit.event, 'payload', emit.payload)::text
    );
END
$$;
