-- A webhook's optional rate limit, in requests per second (NULL: none). The dispatcher honours it
-- across replicas through walhook.rate_bucket: deliveries wait for a token, they do not fail.
ALTER TABLE walhook.webhook ADD COLUMN rate_limit integer CHECK (rate_limit BETWEEN 1 AND 1000);

-- One token bucket per rate-limited webhook, shared by every dispatcher replica (issue 14). It is
-- refilled by time (rate_limit tokens a second, up to a burst of a tenth of a second's worth, at
-- least 1) and taken in small batches by each replica (DispatchRateTake), which spends them in
-- memory. taken is what the last take granted (the statement returns it). The row is written at
-- each take, a few times a second per replica and limited webhook, so the table is UNLOGGED: no
-- WAL, and after a crash the buckets start full, which only allows one burst.
CREATE UNLOGGED TABLE walhook.rate_bucket (
    webhook_id  bigint      PRIMARY KEY REFERENCES walhook.webhook (id) ON DELETE CASCADE,
    rate        integer     NOT NULL, -- the webhook's rate_limit at the last take
    tokens      float8      NOT NULL,
    refilled_at timestamptz NOT NULL,
    taken       integer     NOT NULL DEFAULT 0
);
-- The dispatcher keeps the set of rate-limited webhooks (DispatchRateLimits) to size their claims.
CREATE INDEX webhook_rate_limit_idx ON walhook.webhook (id) WHERE rate_limit IS NOT NULL;
