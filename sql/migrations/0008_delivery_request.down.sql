ALTER TABLE walhook.delivery ADD COLUMN request jsonb;
-- Back-fill from the latest attempt, as 0008 read it.
UPDATE walhook.delivery d SET request = (
    SELECT jsonb_build_object('method', a.request_method, 'url', a.request_url,
        'headers', a.request_headers, 'body', a.request_body)
    FROM walhook.attempt a WHERE a.delivery_id = d.id
    ORDER BY a.id DESC LIMIT 1);
