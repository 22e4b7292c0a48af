-- LeaseAcquire takes the lease when it is free or expired, or renews it when holder already has
-- it. No row: another holder has a live lease.
-- name: LeaseAcquire :one
INSERT INTO walhook.lease (name, holder, expires_at)
VALUES (@name, @holder, now() + make_interval(secs => @ttl_seconds::float8))
ON CONFLICT (name) DO UPDATE SET
    holder = excluded.holder,
    expires_at = excluded.expires_at,
    acquired_at = CASE WHEN walhook.lease.holder = excluded.holder THEN walhook.lease.acquired_at ELSE now() END
WHERE walhook.lease.holder = excluded.holder OR walhook.lease.expires_at < now()
RETURNING holder, expires_at, acquired_at;

-- name: LeaseRelease :execrows
DELETE FROM walhook.lease WHERE name = @name AND holder = @holder;

-- name: LeaseGet :one
SELECT name, holder, expires_at, acquired_at, (expires_at > now())::boolean AS live
FROM walhook.lease WHERE name = @name;
