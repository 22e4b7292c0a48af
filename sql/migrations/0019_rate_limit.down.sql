DROP TABLE walhook.rate_bucket;
ALTER TABLE walhook.webhook DROP COLUMN rate_limit;
