-- The moved mark (migration 0025, `walhook split`): set in a single database whose walhook data
-- was copied into walhook's own database. A walhook whose --database-url carries it refuses to run.

-- CaptureSettingMovedGet reads the mark (moved_at NULL: not moved).
-- name: CaptureSettingMovedGet :one
SELECT moved_at, coalesce(moved_to, '')::text AS moved_to FROM walhook.capture_setting;

-- CaptureSettingMovedLock reads the mark and locks the row until the transaction ends: a
-- dispatcher registering meanwhile (ReplicaRegister, FOR SHARE on the row) waits, then sees the
-- outcome; one that registered first is visible to the caller's next statement.
-- name: CaptureSettingMovedLock :one
SELECT moved_at, coalesce(moved_to, '')::text AS moved_to FROM walhook.capture_setting FOR UPDATE;

-- name: CaptureSettingMovedSet :exec
UPDATE walhook.capture_setting SET moved_at = now(), moved_to = @moved_to::text, updated_at = now();

-- name: CaptureSettingMovedClear :exec
UPDATE walhook.capture_setting SET moved_at = NULL, moved_to = NULL, updated_at = now();

-- CaptureSettingSourceRecord records where capture reads from ('self' or 'apart', migration 0028)
-- unless it is recorded already, and returns what is recorded.
-- name: CaptureSettingSourceRecord :one
UPDATE walhook.capture_setting SET capture_source = coalesce(capture_source, @capture_source::text)
RETURNING capture_source::text;

-- CaptureSettingSourceGet reads where capture reads from ('' not recorded; migration 0028).
-- name: CaptureSettingSourceGet :one
SELECT coalesce(capture_source, '')::text FROM walhook.capture_setting;
