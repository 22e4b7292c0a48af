-- What capture needs in the application's database when walhook keeps its own database apart
-- (--source-database-url; docs/architecture.md, "What lives where"): the schema walhook, the
-- outbox and its NOTIFY trigger, the emit keys, walhook.emit and the mode it follows. Nothing
-- else of walhook's lives here.
--
-- Written to apply cleanly to a database the main migration set already migrated (an
-- installation with one database moving to two): every object is created only when missing, or
-- replaced by the same definition the main set ends with, and no row already there is changed.

CREATE SCHEMA IF NOT EXISTS walhook;

-- The outbox: an application inserts here in its own transaction (or calls walhook.emit).
CREATE TABLE IF NOT EXISTS walhook.outbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  text        NOT NULL,
    event_key   text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Outbox pollers LISTEN on walhook_outbox; one notification per inserting statement.
CREATE OR REPLACE FUNCTION walhook.outbox_notify() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('walhook_outbox', '');
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER outbox_notify
    AFTER INSERT ON walhook.outbox
    FOR EACH STATEMENT
    EXECUTE FUNCTION walhook.outbox_notify();

-- The mode walhook.emit follows ('wal': a signed logical message; 'poll': an outbox row), written
-- by the relay at start; unsigned_before as in main migration 0010 (NULL here: this database never
-- had the unsigned walhook.emit, unless the main set migrated it, whose row is kept).
CREATE TABLE IF NOT EXISTS walhook.capture_setting (
    id               boolean     PRIMARY KEY DEFAULT true CHECK (id),
    mode             text        NOT NULL DEFAULT 'wal' CHECK (mode IN ('wal', 'poll')),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    unsigned_before  pg_lsn
);
INSERT INTO walhook.capture_setting (id) VALUES (true) ON CONFLICT (id) DO NOTHING;

-- The keys walhook.emit signs with (main migration 0010 explains the format). Only walhook's own
-- role may read them.
CREATE TABLE IF NOT EXISTS walhook.emit_key (
    id          integer     PRIMARY KEY CHECK (id > 0),
    ipad        bytea       NOT NULL CHECK (length(ipad) = 64),
    opad        bytea       NOT NULL CHECK (length(opad) = 64),
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON walhook.emit_key FROM PUBLIC;

-- The first key, when there is none: 32 random bytes, zero-padded to HMAC's 64-byte block.
DO $$
DECLARE
    k bytea := sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
        || decode(repeat('00', 32), 'hex');
    i bytea := k;
    o bytea := k;
BEGIN
    IF EXISTS (SELECT 1 FROM walhook.emit_key) THEN
        RETURN;
    END IF;
    FOR n IN 0..63 LOOP
        i := set_byte(i, n, get_byte(k, n) # 54);  -- 0x36
        o := set_byte(o, n, get_byte(k, n) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO walhook.emit_key (id, ipad, opad) VALUES (1, i, o);
END
$$;

-- walhook.emit, as the main set's latest definition (0010_emit_auth): SECURITY DEFINER, signed.
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

-- Emitting is a privilege the operator grants (deploy/postgresql/grant.sql).
REVOKE ALL ON FUNCTION walhook.emit(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION walhook.outbox_notify() FROM PUBLIC;
