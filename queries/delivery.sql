-- DeliveryEnqueue inserts one pending delivery of an event per webhook, due now, and wakes the
-- dispatchers when the surrounding transaction commits. Webhooks already holding a delivery of
-- the event are skipped, so a replay creates nothing twice.
-- name: DeliveryEnqueue :many
INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_key)
SELECT e.company_id, w.id, e.id, e.event_key
FROM walhook.event e
JOIN walhook.webhook w ON w.company_id = e.company_id AND w.id = ANY(@webhook_ids::bigint[])
WHERE e.id = @event_id
ON CONFLICT (event_id, webhook_id) DO NOTHING
RETURNING id;

-- name: DeliveryNotify :exec
SELECT pg_notify('walhook_deliveries', '');

-- DeliveryGetByID returns any company's delivery with the request as last built (its latest
-- attempt's; NULL before the first attempt).
-- name: DeliveryGetByID :one
SELECT d.*,
       (SELECT jsonb_build_object('method', a.request_method, 'url', a.request_url,
                                  'headers', a.request_headers,
                                  'body', coalesce(a.request_body, (SELECT e.payload::text FROM walhook.event e WHERE e.id = d.event_id)))
        FROM walhook.attempt a WHERE a.delivery_id = d.id
        ORDER BY a.id DESC LIMIT 1)::jsonb AS request
FROM walhook.delivery d WHERE d.id = $1;
