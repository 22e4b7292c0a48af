CREATE OR REPLACE FUNCTION walhook.emit(company_id text, event text, payload jsonb DEFAULT '{}')
RETURNS pg_lsn
LANGUAGE sql
VOLATILE
AS $$
    SELECT pg_logical_emit_message(
        true,
        'walhook',
        jsonb_build_object('company_id', company_id, 'event', event, 'payload', payload)::text
    )
$$;

DROP TRIGGER IF EXISTS outbox_notify ON walhook.outbox;
DROP FUNCTION IF EXISTS walhook.outbox_notify();
DROP TABLE IF EXISTS walhook.capture_setting;
