-- The example host application's own tables, in its own schema `hostapp` of the same database as
-- walhook (walhook keeps to schema `walhook`). The application creates them at every start; IF NOT
-- EXISTS makes that a no-op after the first. walhook reads nothing here but hostapp.contacts,
-- which its catalog (catalog.yaml) maps to contact.* events.
CREATE SCHEMA IF NOT EXISTS hostapp;

-- A customer of the host application. Its id is the tenant value: walhook knows the company by it
-- (external_id when provisioned), and every contacts row carries it in company_id. A UUID, so it
-- never meets another system's company ids (walhook dev's demo company is "1").
CREATE TABLE IF NOT EXISTS hostapp.companies (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL CHECK (name <> ''),
    walhook_id text        UNIQUE, -- the company's id in walhook's platform API, once provisioned
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The application's users; each is provisioned into walhook as a member of its company.
CREATE TABLE IF NOT EXISTS hostapp.users (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id        uuid        NOT NULL REFERENCES hostapp.companies (id),
    email             text        NOT NULL CHECK (email LIKE '%_@_%'),
    role              text        NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'reader')), -- reader: walhook's page, read only
    walhook_member_id bigint,     -- the member's id in walhook, once provisioned
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, email)
);

-- The table whose writes are webhooks: an insert is contact.created, a delete contact.deleted.
-- REPLICA IDENTITY FULL lets a delete carry the whole old row (and its company_id, the tenant).
CREATE TABLE IF NOT EXISTS hostapp.contacts (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id uuid        NOT NULL REFERENCES hostapp.companies (id),
    name       text        NOT NULL CHECK (name <> ''),
    email      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE hostapp.contacts REPLICA IDENTITY FULL;
