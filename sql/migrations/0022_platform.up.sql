-- The platform API (issue 16): the host application's own tokens, companies it can disable, and
-- an audit actor for what it does.
--
-- A platform token speaks for the host application, not for a member of a company, so it lives
-- in its own table rather than as a kind of walhook.api_token: no company_id or member_id that
-- could be half set, and no query over company tokens can ever return one. Stored like the
-- company tokens: the SHA-256 of the plaintext (shown once), a display prefix, an expiry.
CREATE TABLE walhook.platform_token (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- A disabled company (set by the platform API): its members cannot sign in or use their tokens,
-- its new events are not fanned out to its webhooks, and the relay treats its webhooks as off.
-- NULL: enabled.
ALTER TABLE walhook.company ADD COLUMN disabled_at timestamptz;

-- Who did an audited action when it was not a member: 'platform:<token name>' for the platform
-- API. NULL for a member's action (member_id names them).
ALTER TABLE walhook.audit_log ADD COLUMN actor text CHECK (actor IS NULL OR length(actor) <= 200);
