-- ReplicaBeat renews a dispatcher replica's heartbeat: its claims stay its own until expires_at.
-- No row: the replica has not registered yet, or another replica found it dead, released its
-- claims and deleted the row (ReplicaReap); the caller registers again (and drops what it holds).
-- alive counts the replicas whose heartbeat is current, this one included.
-- name: ReplicaBeat :one
UPDATE walhook.replica me SET heartbeat_at = now(), expires_at = now() + make_interval(secs => @timeout_seconds::float8)
WHERE me.id = @id::text
RETURNING (SELECT count(*) FROM walhook.replica r WHERE r.expires_at >= now() OR r.id = me.id)::integer AS alive;

-- ReplicaRegister adds a replica (or renews it, should it exist after all). It adds none to a
-- database `walhook split` marked as moved (0 rows): the row lock it shares with the split's
-- CaptureSettingMovedLock orders the two, so a dispatcher either registered before the mark (and
-- the split sees it and refuses) or sees the mark (and claims nothing).
-- name: ReplicaRegister :execrows
WITH open AS (
    SELECT 1 FROM walhook.capture_setting WHERE moved_at IS NULL FOR SHARE
)
INSERT INTO walhook.replica (id, started_at, heartbeat_at, expires_at)
SELECT @id::text, @started_at::timestamptz, now(), now() + make_interval(secs => @timeout_seconds::float8) FROM open
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at;

-- ReplicaReap deletes the replicas whose heartbeat has expired (never the caller: a replica that
-- was cut off from the database itself does not judge itself) and returns their ids; the caller
-- releases their claims in the same transaction (DispatchReleaseReplicas). Concurrent reapers
-- each get a different set: a row is deleted once.
-- name: ReplicaReap :many
DELETE FROM walhook.replica WHERE expires_at < now() AND id <> @self RETURNING id;

-- ReplicaDelete removes a replica that stops cleanly (after releasing its claims).
-- name: ReplicaDelete :exec
DELETE FROM walhook.replica WHERE id = @id;

-- ReplicaList lists the replicas, for operators and tests.
-- name: ReplicaList :many
SELECT id, started_at, heartbeat_at, expires_at, (expires_at >= now())::boolean AS alive
FROM walhook.replica ORDER BY started_at, id;
