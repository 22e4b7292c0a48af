-- The moved mark of `walhook split` (main migration 0025): a database whose walhook data was
-- copied into walhook's own database carries it, and walhook refuses to run with it as its own
-- (--database-url). The same columns as in the main set, so the mark reads the same wherever the
-- row is; IF NOT EXISTS, as a database the main set migrated has them already.
ALTER TABLE walhook.capture_setting
    ADD COLUMN IF NOT EXISTS moved_at timestamptz,
    ADD COLUMN IF NOT EXISTS moved_to text CHECK (length(moved_to) <= 500);
