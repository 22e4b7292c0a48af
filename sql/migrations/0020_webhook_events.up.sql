-- A webhook subscribes to one or more trigger events (issue 15), as Stripe and Svix endpoints do:
-- event_keys replaces event_key, in the order the user chose them (the first is what the API
-- still returns as "event" to old clients). An array rather than a subscription table: every read
-- of a webhook (SELECT *, the dispatcher's cache, the listing) keeps one row per webhook, and the
-- fan-out matches with event_key = ANY(event_keys) among the few active webhooks of the event's
-- company (webhook_active_company_idx; at most the webhook quota per company).
ALTER TABLE walhook.webhook ADD COLUMN event_keys text[];
UPDATE walhook.webhook SET event_keys = ARRAY[event_key];
ALTER TABLE walhook.webhook
    ALTER COLUMN event_keys SET NOT NULL,
    ADD CONSTRAINT webhook_event_keys_check CHECK (
        cardinality(event_keys) BETWEEN 1 AND 50 AND array_ndims(event_keys) = 1
        AND array_position(event_keys, NULL) IS NULL);
DROP INDEX walhook.webhook_active_idx;
ALTER TABLE walhook.webhook DROP COLUMN event_key;
CREATE INDEX webhook_active_company_idx ON walhook.webhook (company_id) WHERE active;

-- The foreign key event_key had to the catalog, for every element: a key the catalog never held
-- is refused with SQLSTATE 23503 and constraint webhook_event_keys_fkey (the API answers it as a
-- field error). Catalog entries are retired, never deleted, so checking on write is enough.
CREATE FUNCTION walhook.webhook_event_keys_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT k INTO missing FROM unnest(NEW.event_keys) k
    WHERE NOT EXISTS (SELECT 1 FROM walhook.event_type t WHERE t.key = k) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'unknown trigger event %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'webhook_event_keys_fkey',
                  TABLE = 'webhook', SCHEMA = 'walhook';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER webhook_event_keys_fkey BEFORE INSERT OR UPDATE OF event_keys ON walhook.webhook
    FOR EACH ROW EXECUTE FUNCTION walhook.webhook_event_keys_check();
