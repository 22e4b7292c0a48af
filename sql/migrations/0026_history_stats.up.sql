-- A webhook's history listing reads the newest page, not the webhook's whole history (issue 17).
-- DeliveryHistoryList filters on company_id AND webhook_id; the planner took the two as
-- independent, estimated a webhook's rows ÷ the number of companies (5 of 1,639 in the bench
-- history at 1 M deliveries), and read every delivery of the webhook through a bitmap scan to
-- sort them, instead of delivery_webhook_time_idx newest first up to the LIMIT: 2.75 ms and
-- 1,656 pages against 0.13 ms and 57 (EXPLAIN ANALYZE, `walhook bench history`), and the first
-- grows with the webhook's history. A webhook belongs to one company, which these statistics
-- tell the planner. ANALYZE fills them now (a sample: a few seconds on a large table, no lock
-- that blocks writes) rather than at autovacuum's next analyze — but only when the table holds
-- rows: an ANALYZE of the empty table of a new installation records it as empty, and until
-- autovacuum analyzes it again (after 50 rows and up to a minute) the planner picks plans for an
-- empty table (DispatchRecord took 89 ms a batch instead of 1.6: `walhook bench --quick`,
-- throughput-outbox/table 2,400/s against 7,600/s).
CREATE STATISTICS IF NOT EXISTS walhook.delivery_company_webhook_stats (dependencies)
    ON company_id, webhook_id FROM walhook.delivery;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM walhook.delivery) THEN
        ANALYZE walhook.delivery;
    END IF;
END
$$;
