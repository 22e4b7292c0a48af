-- walhook's whole data model lives in its own schema so it can share a database with the
-- application whose writes it turns into webhooks.

CREATE SCHEMA IF NOT EXISTS walhook;

-- A company is the application's own tenant; id is the application's company id as text, so the
-- tenant column of a captured row maps to it without a lookup.
CREATE TABLE walhook.company (
    id          text        PRIMARY KEY CHECK (id <> '' AND length(id) <= 200),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE walhook.role (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  text        NOT NULL REFERENCES walhook.company (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, name),
    UNIQUE (company_id, id)
);

-- Permissions granted to a role. Today there is one: manage_webhooks.
CREATE TABLE walhook.role_permission (
    company_id  text        NOT NULL,
    role_id     bigint      NOT NULL,
    permission  text        NOT NULL CHECK (permission IN ('manage_webhooks')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, permission),
    FOREIGN KEY (company_id, role_id) REFERENCES walhook.role (company_id, id) ON DELETE CASCADE
);

CREATE TABLE walhook.member (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  text        NOT NULL REFERENCES walhook.company (id) ON DELETE CASCADE,
    email       text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name        text        NOT NULL DEFAULT '',
    is_owner    boolean     NOT NULL DEFAULT false,
    role_id     bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, email),
    UNIQUE (company_id, id),
    FOREIGN KEY (company_id, role_id) REFERENCES walhook.role (company_id, id) ON DELETE SET NULL (role_id)
);

-- API tokens are stored as SHA-256 hashes; the plaintext is shown once, at creation.
CREATE TABLE walhook.api_token (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id   text        NOT NULL,
    member_id    bigint      NOT NULL,
    name         text        NOT NULL DEFAULT '',
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    FOREIGN KEY (company_id, member_id) REFERENCES walhook.member (company_id, id) ON DELETE CASCADE
);

-- The trigger-event catalog, declared by the operator in YAML and upserted at start. An event
-- removed from the file is retired, never deleted: history keeps pointing at it.
CREATE TABLE walhook.event_type (
    key            text        PRIMARY KEY CHECK (key ~ '^[a-z0-9_]+(\.[a-z0-9_]+)+$' AND length(key) <= 100),
    description    text        NOT NULL DEFAULT '',
    source         text        NOT NULL CHECK (source IN ('table', 'outbox')),
    source_table   text,
    operations     text[]      NOT NULL DEFAULT '{}',
    tenant_column  text,
    columns        text[]      NOT NULL DEFAULT '{}',
    sample         jsonb       NOT NULL DEFAULT '{}',
    retired_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (source = 'outbox' OR (source_table IS NOT NULL AND tenant_column IS NOT NULL)),
    CHECK (operations <@ ARRAY['insert', 'update', 'delete']::text[])
);

-- OAuth credentials. Every *_enc column is AES-256-GCM ciphertext whose header names the key id,
-- so keys can be rotated row by row.
CREATE TABLE walhook.oauth_credential (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id        text        NOT NULL REFERENCES walhook.company (id) ON DELETE CASCADE,
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_url         text        NOT NULL CHECK (length(token_url) BETWEEN 1 AND 2048),
    method            text        NOT NULL DEFAULT 'POST' CHECK (method IN ('GET', 'POST')),
    grant_type        text        NOT NULL CHECK (grant_type IN ('authorization_code', 'client_credentials', 'refresh_token')),
    client_id         text        NOT NULL DEFAULT '',
    client_secret_enc bytea,
    code_enc          bytea,
    scope             text        NOT NULL DEFAULT '',
    -- extra parameters: [{"key":…,"value":…}], sent as given (not secret)
    extra_params      jsonb       NOT NULL DEFAULT '[]',
    refresh_token_enc bytea,
    access_token_enc  bytea,
    token_expires_at  timestamptz,
    created_by        bigint,
    updated_by        bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, id),
    UNIQUE (company_id, name)
);

CREATE TABLE walhook.webhook (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id          text        NOT NULL REFERENCES walhook.company (id) ON DELETE CASCADE,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    url                 text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    method              text        NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
    event_key           text        NOT NULL REFERENCES walhook.event_type (key),
    oauth_id            bigint,
    -- [{"key":…,"value":…,"secret":false}]; values of secret headers live in secret_headers_enc only
    headers             jsonb       NOT NULL DEFAULT '[]',
    secret_headers_enc  bytea,
    raw_data            boolean     NOT NULL DEFAULT true,
    -- [{"key":…,"path":"data.email"}], used when raw_data is off, in this order
    params              jsonb       NOT NULL DEFAULT '[]',
    active              boolean     NOT NULL DEFAULT false,
    signing_secret_enc  bytea       NOT NULL,
    previous_secret_enc bytea,
    previous_secret_expires_at timestamptz,
    last_sent_at        timestamptz,
    last_status         text        CHECK (last_status IN ('succeeded', 'failed')),
    failing_since       timestamptz,
    disabled_reason     text,
    disabled_at         timestamptz,
    created_by          bigint,
    updated_by          bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, id),
    FOREIGN KEY (company_id, oauth_id) REFERENCES walhook.oauth_credential (company_id, id) ON DELETE RESTRICT
);
-- fan-out: active webhooks by company and event
CREATE INDEX webhook_active_idx ON walhook.webhook (company_id, event_key) WHERE active;
CREATE INDEX webhook_company_name_idx ON walhook.webhook (company_id, name, id);
CREATE INDEX webhook_oauth_idx ON walhook.webhook (oauth_id) WHERE oauth_id IS NOT NULL;

-- One row per captured event. source_key is the unique source position ("wal:<commit lsn>:<n>",
-- "outbox:<id>"), so a replay after a crash creates nothing twice.
CREATE TABLE walhook.event (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_key   text        NOT NULL UNIQUE,
    company_id   text        NOT NULL,
    event_key    text        NOT NULL,
    -- the envelope: {"id","type","company_id","occurred_at","data","previous"}
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    captured_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_company_key_idx ON walhook.event (company_id, event_key, id DESC);
CREATE INDEX event_captured_idx ON walhook.event (captured_at);

-- The delivery table is both the queue and the history: one row per (event, webhook).
CREATE TABLE walhook.delivery (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id       text        NOT NULL,
    webhook_id       bigint      NOT NULL REFERENCES walhook.webhook (id) ON DELETE CASCADE,
    event_id         bigint      NOT NULL REFERENCES walhook.event (id) ON DELETE CASCADE,
    event_key        text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    leased_by        text,
    -- the request as last built: {"method","url","headers" (masked),"body"}
    request          jsonb,
    last_status_code integer,
    last_error       text,
    last_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, webhook_id)
);
-- claim due deliveries (pending, due, lease free or expired)
CREATE INDEX delivery_due_idx ON walhook.delivery (next_attempt_at) WHERE state = 'pending';
-- a webhook's history by time
CREATE INDEX delivery_webhook_time_idx ON walhook.delivery (webhook_id, created_at DESC, id DESC);
-- retention
CREATE INDEX delivery_created_idx ON walhook.delivery (created_at);

-- One row per HTTP try.
CREATE TABLE walhook.attempt (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      bigint      NOT NULL REFERENCES walhook.delivery (id) ON DELETE CASCADE,
    company_id       text        NOT NULL,
    webhook_id       bigint      NOT NULL,
    n                integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer     NOT NULL DEFAULT 0,
    request_method   text        NOT NULL,
    request_url      text        NOT NULL,
    request_headers  jsonb       NOT NULL DEFAULT '{}',
    request_body     text        NOT NULL DEFAULT '',
    response_status  integer,
    response_headers jsonb,
    response_body    text,
    error            text,
    outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed')),
    trigger          text        NOT NULL DEFAULT 'auto' CHECK (trigger IN ('auto', 'resync'))
);
CREATE INDEX attempt_delivery_idx ON walhook.attempt (delivery_id, n);
CREATE INDEX attempt_started_idx ON walhook.attempt (started_at);

-- The outbox: an application inserts here in its own transaction (or calls walhook.emit).
CREATE TABLE walhook.outbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  text        NOT NULL,
    event_key   text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Leases for singleton roles (the capture leader). holder is an instance id; a lease that is not
-- renewed expires and another replica takes it.
CREATE TABLE walhook.lease (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);

-- Who created, changed or deleted which webhook or credential, and when.
CREATE TABLE walhook.audit_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id   text        NOT NULL REFERENCES walhook.company (id) ON DELETE CASCADE,
    member_id    bigint,
    action       text        NOT NULL,
    object_type  text        NOT NULL,
    object_id    bigint      NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_object_idx ON walhook.audit_log (company_id, object_type, object_id, at DESC);

-- walhook.emit: emit an event from any transaction without a table to vacuum. The message is
-- transactional, so a rolled-back transaction emits nothing.
CREATE FUNCTION walhook.emit(company_id text, event text, payload jsonb DEFAULT '{}')
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
