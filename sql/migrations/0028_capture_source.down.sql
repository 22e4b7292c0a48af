-- Forgets where capture reads from: relays started either way are accepted again.
ALTER TABLE walhook.capture_setting DROP COLUMN capture_source;
