-- The keys walhook.emit signs its logical messages with (migration 0010). Only walhook's own role
-- can read this table; capture verifies with every key in it.

-- name: EmitKeyList :many
SELECT id, ipad, opad FROM walhook.emit_key ORDER BY id DESC;

-- EmitKeyUnsignedBefore is the WAL position below which capture accepts a message of the old,
-- unsigned walhook.emit (written before migration 0010); NULL accepts none.
-- name: EmitKeyUnsignedBefore :one
SELECT coalesce(unsigned_before::text, '')::text FROM walhook.capture_setting;

-- EmitKeyAdd adds a key that signs from now on: its id is one above the newest.
-- name: EmitKeyAdd :one
INSERT INTO walhook.emit_key (id, ipad, opad)
SELECT coalesce(max(id), 0) + 1, @ipad::bytea, @opad::bytea FROM walhook.emit_key
RETURNING id;

-- EmitKeyPrune deletes every key but the newest @keep ones.
-- name: EmitKeyPrune :execrows
DELETE FROM walhook.emit_key
WHERE id NOT IN (SELECT id FROM walhook.emit_key ORDER BY id DESC LIMIT @keep::int);
