-- One-time sign-in codes: `walhook dev` prints a link carrying one; the web page exchanges it once
-- for a short-lived API token. Stored as SHA-256 hashes, like API tokens.
CREATE TABLE walhook.login_code (
    code_hash   bytea       PRIMARY KEY CHECK (length(code_hash) = 32),
    company_id  text        NOT NULL,
    member_id   bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (company_id, member_id) REFERENCES walhook.member (company_id, id) ON DELETE CASCADE
);
CREATE INDEX login_code_expires_idx ON walhook.login_code (expires_at);
