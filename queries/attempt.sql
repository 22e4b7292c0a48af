-- AttemptListByDelivery lists a delivery's attempts in order, each with the body it sent (the
-- event's envelope where the attempt stored NULL for it).
-- name: AttemptListByDelivery :many
SELECT a.id, a.delivery_id, a.n, a.started_at, a.duration_ms, a.request_method, a.request_url,
       a.request_headers, coalesce(a.request_body, e.payload::text)::text AS request_body,
       a.response_status, a.response_headers, a.response_body, a.error, a.outcome, a.trigger
FROM walhook.attempt a
JOIN walhook.delivery d ON d.id = a.delivery_id
JOIN walhook.event e ON e.id = d.event_id
WHERE a.delivery_id = $1 ORDER BY a.n, a.id;
