-- Write the request once (issue 6). delivery.request repeated the last attempt's method, URL,
-- masked headers and body (~1.1 KiB), so every delivery wrote its payload three times: the event,
-- the attempt, and this copy, rewritten on each attempt. The attempt rows hold the same request;
-- the history reads the latest one (DeliveryHistoryGet, DeliveryGetByID).
ALTER TABLE walhook.delivery DROP COLUMN request;
