-- Dispatcher replicas (issue 12). Every dispatcher renews a row here every couple of seconds
-- (heartbeat_at, expires_at = heartbeat + its own timeout, so replicas with different settings
-- judge each other by the owner's timeout). Its claims carry its id as their token's prefix
-- (delivery.leased_by = '<id>:<n>'), so no column or index is added to delivery. A replica whose
-- row has expired is dead: another replica deletes the row and, in the same transaction, releases
-- its claims (lease_until = NULL), within seconds instead of the dispatch lease (minutes). The id
-- is new for every process, so a restarted replica releases its predecessor's claims.
CREATE TABLE walhook.replica (
    id           text        PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
