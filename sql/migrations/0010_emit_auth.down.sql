CREATE OR REPLACE FUNCTION walhook.emit(company_id text, event text, payload jsonb DEFAULT '{}')
RETURNS pg_lsn
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
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
GRANT EXECUTE ON FUNCTION walhook.emit(text, text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION walhook.outbox_notify() TO PUBLIC;

ALTER TABLE walhook.capture_setting DROP COLUMN IF EXISTS unsigned_before;
DROP TABLE IF EXISTS walhook.emit_key;
