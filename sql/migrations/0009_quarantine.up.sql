-- Capture's quarantine (issue 12): an event the fan-out cannot store for a reason in the data
-- itself (a value jsonb refuses, a constraint, a size limit) is set aside here instead of being
-- retried forever, which stopped capture for every company. Nothing in a row can itself fail to
-- store: the envelope is kept as bytes, the text columns are cleaned by the relay (no NUL, valid
-- UTF-8) and the reason is bounded. `walhook quarantine list|show|retry|drop` works on it.
CREATE TABLE walhook.capture_quarantine (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the event's unique source position, as walhook.event.source_key would hold it; a replay
    -- of the same position quarantines nothing twice
    source_key    text        NOT NULL UNIQUE,
    company_id    text        NOT NULL DEFAULT '',
    event_key     text        NOT NULL DEFAULT '',
    -- the envelope exactly as capture built it (JSON text, possibly not storable as jsonb)
    payload       bytea       NOT NULL,
    occurred_at   timestamptz,
    -- why: the SQLSTATE and PostgreSQL's message (at most 1,000 characters)
    sqlstate      text        NOT NULL DEFAULT '',
    reason        text        NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_tried_at timestamptz NOT NULL DEFAULT now(),
    -- how often storing it failed: 1 when quarantined, +1 per failed `walhook quarantine retry`
    attempts      integer     NOT NULL DEFAULT 1
);
