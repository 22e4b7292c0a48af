-- One home for a webhook's counts (issue 18): the admin listing's two statements,
-- WebhookListByName and WebhookListByLastSent, join this function per webhook instead of each
-- writing out the same counting subquery.
--
-- webhook_counts is a webhook's deliveries in the history, by state: triggered (all of them),
-- succeeded, failed and pending; one row, zeros for a webhook without history.
--
-- The planner inlines it into the statement that calls it, so the listing is planned as if the
-- subquery were written out: an index-only scan of delivery_webhook_time_idx per webhook, which
-- includes company_id and state (0029). Inlining needs what it is: LANGUAGE sql, one SELECT,
-- STABLE, not STRICT, not SECURITY DEFINER, no SET clause (not even search_path: the body names
-- its table with its schema), and EXECUTE for the caller. Any of those changed makes it a Function
-- Scan that runs the count as a query of its own for every webhook of the page
-- (relay/store TestWebhookCountsInlined fails then).
--
-- EXECUTE stays with PUBLIC (the default), unlike history_partition_create's: the function runs
-- with its caller's rights, so it shows a role no more than that role's SELECT on walhook.delivery
-- already does (none to the application's roles, grant.sql).
--
-- The parameter is named with the function (webhook_counts.webhook_id): in a SQL function's body
-- a column of the same name wins over a bare parameter name, and d.webhook_id = webhook_id would
-- count every delivery.
CREATE FUNCTION walhook.webhook_counts(webhook_id bigint)
RETURNS TABLE (triggered bigint, succeeded bigint, failed bigint, pending bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT count(*),
       count(*) FILTER (WHERE d.state = 'succeeded'),
       count(*) FILTER (WHERE d.state = 'failed'),
       count(*) FILTER (WHERE d.state = 'pending')
FROM walhook.delivery d
WHERE d.webhook_id = webhook_counts.webhook_id
$$;
