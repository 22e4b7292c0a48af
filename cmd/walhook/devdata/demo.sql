-- The demo application's table for `walhook dev`: contacts of each company. REPLICA IDENTITY FULL
-- lets updates and deletes carry the previous row.
CREATE TABLE IF NOT EXISTS public.contacts (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id text        NOT NULL,
    name       text        NOT NULL,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.contacts REPLICA IDENTITY FULL;
