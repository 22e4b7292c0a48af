DROP INDEX walhook.event_captured_brin;
CREATE INDEX event_captured_idx ON walhook.event (captured_at);
DROP INDEX walhook.delivery_created_brin;
CREATE INDEX delivery_created_idx ON walhook.delivery (created_at);
