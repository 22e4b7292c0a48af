UPDATE walhook.attempt a SET request_body = e.payload::text
FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id
WHERE a.request_body IS NULL AND d.id = a.delivery_id;
UPDATE walhook.attempt SET request_body = '' WHERE request_body IS NULL;
ALTER TABLE walhook.attempt ALTER COLUMN request_body SET NOT NULL;
