-- A single-database installation moved to two databases (issue 17, `walhook split`). The split
-- copies walhook's data into walhook's own database and marks the old one here: moved_at is when,
-- moved_to names the new database (host, port and database name; never a password). A walhook
-- whose --database-url carries the mark refuses to start (serve, relay, admin and the commands
-- that change walhook's data): it would deliver the copied pending deliveries a second time, and
-- what it wrote would be missing from the new database. A dispatcher cannot register in a marked
-- database either (ReplicaRegister), so one that started in the same instant claims nothing.
-- The source migration set adds the same two columns, so the mark reads the same in both.
ALTER TABLE walhook.capture_setting
    ADD COLUMN moved_at timestamptz,
    ADD COLUMN moved_to text CHECK (length(moved_to) <= 500);
