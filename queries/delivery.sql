-- DeliveryEnqueue inserts one pending delivery of an event per webhook of its company, due now,
-- for storetest.Enqueue (tests only; capture's fan-out is CaptureCommit). Webhooks already
-- holding a delivery of the event are skipped, so a replay creates nothing twice.
-- name: DeliveryEnqueue :many
INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key)
SELECT e.company_id, w.id, e.id, e.occurred_at, e.event_key
FROM walhook.event e
JOIN walhook.webhook w ON w.company_id = e.company_id AND w.id = ANY(@webhook_ids::bigint[])
WHERE e.id = @event_id
ON CONFLICT (event_id, webhook_id, event_at) DO NOTHING
RETURNING id;

-- name: DeliveryNotify :exec
SELECT pg_notify('walhook_deliveries', '');

-- DeliveryCompany returns a delivery's company, whatever it is: for relay/store/storetest (tests
-- only), which then reads the delivery through the company-scoped history.
-- name: DeliveryCompany :one
SELECT company_id FROM walhook.delivery WHERE id = $1;
