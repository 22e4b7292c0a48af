-- walhook's own database, when walhook keeps it apart from the application's (--database-url is
-- this database, --source-database-url the application's; docs/operations.md, "Two databases").
-- A DBA runs this with psql as a superuser (or a role with CREATEDB and CREATEROLE) on the cluster
-- that holds walhook's database:
--
--   psql -d postgres -v walhook_db=walhook -v walhook_password="'…'" -f grant-walhook-db.sql
--
-- and grant.sql on the application's database, for capture's side. walhook gets CONNECT and
-- CREATE on its database and owns its schema `walhook` there: the queue, the history, the
-- configuration and the leases. It needs no REPLICATION here, and no other role may connect.
\set ON_ERROR_STOP on

-- 1. The role (kept when it exists: grant.sql made it, the application's database being in the
-- same cluster).
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'walhook') AS walhook_role_missing \gset
\if :walhook_role_missing
CREATE ROLE walhook LOGIN PASSWORD :walhook_password;
\endif
ALTER ROLE walhook SET statement_timeout = '60s';
ALTER ROLE walhook SET idle_in_transaction_session_timeout = '5min';

-- 2. The database, when missing, closed to everyone but walhook (and superusers).
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'walhook_db') AS walhook_db_missing \gset
\if :walhook_db_missing
CREATE DATABASE :"walhook_db";
\endif
REVOKE ALL ON DATABASE :"walhook_db" FROM PUBLIC;
-- CREATE: the migrator's CREATE SCHEMA IF NOT EXISTS needs it even when the schema exists.
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE :"walhook_db" TO walhook;

-- 3. Its schema, owned by it: `walhook migrate up` creates every table there.
\connect :"walhook_db"
CREATE SCHEMA IF NOT EXISTS walhook AUTHORIZATION walhook;
