-- Where capture reads from, as walhook's database was first run with (issue 17 review): 'self'
-- (one database: the application's tables, slot and outbox are this database's) or 'apart'
-- (--source-database-url: the application's database is another). NULL until a relay, a slot
-- command or `walhook split` records it. A relay or slot command started the other way on the
-- same walhook database is refused: without --source-database-url on a database that captures
-- from another, it would create a slot and an outbox reader in walhook's own cluster, take the
-- capture lease from the relays reading the application, and (another cluster) start a source
-- epoch; with it on a database that captures from itself, the reverse. Clearing it by hand
-- (SET capture_source = NULL) lets the next start record again (docs/operations.md).
ALTER TABLE walhook.capture_setting
    ADD COLUMN capture_source text CHECK (capture_source IN ('self', 'apart'));
