-- Dispatch bookkeeping for resyncs. A resync puts a finished delivery back in the queue; it is
-- delivered again with the same payload and webhook-id, and gets a fresh retry schedule: the
-- schedule position of an attempt is attempts - attempts_base. resync_at marks the attempts made
-- after a resync (attempt.trigger = 'resync').
ALTER TABLE walhook.delivery
    ADD COLUMN attempts_base integer NOT NULL DEFAULT 0,
    ADD COLUMN resync_at     timestamptz;

-- Whatever query resyncs a delivery, a finished delivery that becomes pending again starts a
-- fresh schedule. Keeping this in the database means every writer (admin API, operators with
-- psql) gets the same behaviour.
CREATE FUNCTION walhook.delivery_resync_mark() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.attempts_base := NEW.attempts;
    NEW.resync_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER delivery_resync_mark
    BEFORE UPDATE OF state ON walhook.delivery
    FOR EACH ROW
    WHEN (OLD.state <> 'pending' AND NEW.state = 'pending')
    EXECUTE FUNCTION walhook.delivery_resync_mark();
