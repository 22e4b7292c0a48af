-- Least privilege for walhook in an existing application's database. A DBA runs this with psql
-- as a superuser (or as the owner of the application's tables plus CREATEROLE):
--
--   psql -d app -v app_db=app -v app_role=app -v walhook_password="'…'" -f grant.sql
--
-- walhook gets: LOGIN and REPLICATION (to open its logical replication slot), its own schema
-- `walhook` (it creates and migrates its tables there, and nowhere else), ownership of its
-- publication, and SELECT on the mapped tables only. It gets no write access to any
-- application table, and no superuser, CREATEDB or CREATEROLE.
--
-- This file is the application's side in both deployments. With one database, walhook's whole
-- schema lives in it. With walhook's own database apart (--source-database-url is this database),
-- the schema here holds only what capture needs (the source migration set: walhook.outbox,
-- walhook.emit, its keys and settings), and grant-walhook-db.sql sets up walhook's own database.
\set ON_ERROR_STOP on

-- 1. The role (kept when it exists, e.g. made by grant-walhook-db.sql in the same cluster).
-- REPLICATION allows replication connections and slots; it grants no table access. It also
-- allows physical replication (pg_basebackup: a copy of every database in the cluster) wherever
-- pg_hba.conf lets the role connect to the pseudo-database `replication`: allow walhook the
-- application's database only (logical replication connections match the database's name), e.g.
--   hostssl app walhook 10.0.0.0/8 scram-sha-256
-- and no `replication` line for walhook.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'walhook') AS walhook_role_missing \gset
\if :walhook_role_missing
CREATE ROLE walhook LOGIN REPLICATION PASSWORD :walhook_password;
\else
ALTER ROLE walhook LOGIN REPLICATION PASSWORD :walhook_password;
\endif
-- TEMPORARY: retention sets a week's pending deliveries aside in temporary tables while it drops
-- the week's partitions, and a week's partitions are created by moving its rows out of the
-- default partition through one (migration 0029). Granted to walhook by name, as a database
-- whose PUBLIC privileges were revoked no longer gives it to every role.
GRANT CONNECT, TEMPORARY ON DATABASE :"app_db" TO walhook;
-- Keep walhook's statements from running away on a shared database.
ALTER ROLE walhook SET statement_timeout = '60s';
ALTER ROLE walhook SET idle_in_transaction_session_timeout = '5min';

-- 2. Its schema, owned by it: `walhook migrate up` creates the tables, functions and outbox here
-- (with two databases: only the outbox, walhook.emit, its keys and settings).
-- The migrator runs `CREATE SCHEMA IF NOT EXISTS walhook`, which PostgreSQL only allows with
-- CREATE on the database even when the schema exists; CREATE lets a role make schemas, not touch
-- other schemas' objects. (It is also what owning the publication below requires.)
CREATE SCHEMA IF NOT EXISTS walhook AUTHORIZATION walhook;
GRANT CREATE ON DATABASE :"app_db" TO walhook;

-- 3. Read access to the mapped tables (the tables the event catalog names): the initial
-- replica identity lookup and catalog validation read their columns. One line per table.
GRANT USAGE ON SCHEMA public TO walhook;
GRANT SELECT ON public.contacts TO walhook;

-- 4. The publication. Only a table's owner may add it to a publication, so the DBA creates it over
-- the mapped tables, then hands the publication to walhook (PostgreSQL requires the new owner of
-- a publication to have CREATE on the database).
-- UPDATE/DELETE of a table need a primary key (or REPLICA IDENTITY) to be published;
-- REPLICA IDENTITY FULL also sends the old row ("previous" in the envelope) at some WAL cost:
--   ALTER TABLE public.contacts REPLICA IDENTITY FULL;
CREATE PUBLICATION walhook FOR TABLE public.contacts WITH (publish = 'insert, update, delete');
ALTER PUBLICATION walhook OWNER TO walhook;
-- walhook owns both its publication and walhook.outbox, so after `walhook migrate up` it adds
-- its outbox itself (or run, connected as walhook: ALTER PUBLICATION walhook ADD TABLE walhook.outbox;).
-- A table added to the catalog later: the DBA, as the table's owner, runs
--   GRANT SELECT ON public.<table> TO walhook;
--   ALTER PUBLICATION walhook ADD TABLE public.<table>;

-- 5. Who may emit events. A logical message with walhook's prefix counts only when walhook.emit
-- wrote it: walhook.emit runs as walhook (SECURITY DEFINER) and signs its message with a key in
-- walhook.emit_key that no other role can read; any other message with the prefix is refused as
-- forged. Emitting is a privilege the DBA grants, and no role has it by default (walhook's
-- migration revokes EXECUTE on walhook.emit from PUBLIC). Run this part after `walhook migrate up`
-- has created them:
--   GRANT USAGE ON SCHEMA walhook TO :"app_role";
--   GRANT EXECUTE ON FUNCTION walhook.emit(text, text, jsonb) TO :"app_role";
-- and, for an application that inserts into the outbox table itself:
--   GRANT INSERT ON walhook.outbox TO :"app_role";
-- walhook.emit needs nothing else (in poll mode it writes the outbox row as walhook). Never grant
-- SELECT on walhook.emit_key: whoever reads it can sign events for any company.
