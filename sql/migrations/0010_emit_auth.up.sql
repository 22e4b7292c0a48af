-- Only granted paths make events (docs/architecture.md, "Who may emit").
--
-- Any role may call pg_logical_emit_message, so a logical message with walhook's prefix proves
-- nothing by itself. walhook.emit now authenticates what it emits: it runs as its owner (SECURITY
-- DEFINER, the role that migrated walhook's schema), reads a secret key no other role can read,
-- and prefixes the message with an HMAC-SHA256 over its content. Capture accepts a message with
-- the prefix only when the MAC verifies under one of the keys in walhook.emit_key.
--
-- The key is stored as HMAC's two padded blocks (RFC 2104: the 64-byte key XOR 0x36 and XOR 0x5c),
-- so core sha256() computes the MAC without an extension:
--   mac = sha256(opad || sha256(ipad || content))
-- The newest key signs; capture accepts every key still in the table (current and previous, see
-- `walhook emit-key rotate`).
CREATE TABLE walhook.emit_key (
    id          integer     PRIMARY KEY CHECK (id > 0),
    ipad        bytea       NOT NULL CHECK (length(ipad) = 64),
    opad        bytea       NOT NULL CHECK (length(opad) = 64),
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON walhook.emit_key FROM PUBLIC;

-- The first key: 32 bytes from PostgreSQL's strong random source (gen_random_uuid draws 122 random
-- bits per call; three calls hashed give a full 256-bit key), zero-padded to HMAC's 64-byte block.
DO $$
DECLARE
    k bytea := sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
        || decode(repeat('00', 32), 'hex');
    i bytea := k;
    o bytea := k;
BEGIN
    FOR n IN 0..63 LOOP
        i := set_byte(i, n, get_byte(k, n) # 54);  -- 0x36
        o := set_byte(o, n, get_byte(k, n) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO walhook.emit_key (id, ipad, opad) VALUES (1, i, o);
END
$$;

-- Messages written by the old, unsigned walhook.emit before this migration may still wait in the
-- slot. Capture accepts an unsigned message only below this WAL position: nothing written after
-- the migration can be placed before it, so a forger gains nothing from it.
ALTER TABLE walhook.capture_setting ADD COLUMN unsigned_before pg_lsn;
UPDATE walhook.capture_setting SET unsigned_before = pg_current_wal_insert_lsn();

-- The message is the JSON walhook.emit always wrote, with the MAC as an extra first member:
--   {"mac": "<key id>:<MAC, 64 hex digits>", "event": …, "payload": …, "company_id": …}
-- The MAC covers the UTF-8 text of {"event": …, "payload": …, "company_id": …} (the same JSON
-- without that member). A relay of the previous release ignores the extra member, so it keeps
-- capturing during a rolling upgrade. In poll mode (no slot) the event is an outbox row;
-- SECURITY DEFINER lets a role granted EXECUTE emit without INSERT on walhook.outbox.
CREATE OR REPLACE FUNCTION walhook.emit(company_id text, event text, payload jsonb DEFAULT '{}')
RETURNS pg_lsn
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k record;
    content text;
BEGIN
    IF (SELECT s.mode FROM walhook.capture_setting s) = 'poll' THEN
        INSERT INTO walhook.outbox (company_id, event_key, payload)
        VALUES (emit.company_id, emit.event, coalesce(emit.payload, '{}'));
        RETURN NULL;
    END IF;
    SELECT e.id, e.ipad, e.opad INTO k FROM walhook.emit_key e ORDER BY e.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'walhook.emit: walhook.emit_key is empty (run walhook emit-key rotate)';
    END IF;
    content := jsonb_build_object('company_id', emit.company_id, 'event', emit.event, 'payload', emit.payload)::text;
    RETURN pg_logical_emit_message(
        true,
        'walhook',
        convert_to('{"mac": "' || k.id || ':'
            || encode(sha256(k.opad || sha256(k.ipad || convert_to(content, 'UTF8'))), 'hex')
            || '", ' || substr(content, 2), 'UTF8')
    );
END
$$;

-- EXECUTE on a new function goes to PUBLIC by default: emitting is a privilege the operator
-- grants (deploy/postgresql/grant.sql).
REVOKE ALL ON FUNCTION walhook.emit(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION walhook.outbox_notify() FROM PUBLIC;
