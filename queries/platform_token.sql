-- name: PlatformTokenCreate :one
INSERT INTO walhook.platform_token (name, token_hash, prefix, expires_at)
VALUES (@name, @token_hash, @prefix, sqlc.narg('expires_at'))
RETURNING id, name, prefix, created_at, expires_at, last_used_at, revoked_at;

-- PlatformTokenAuthenticate resolves a platform token's hash; a revoked or expired token matches
-- nothing.
-- name: PlatformTokenAuthenticate :one
SELECT id, name, prefix FROM walhook.platform_token
WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: PlatformTokenTouch :exec
UPDATE walhook.platform_token SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: PlatformTokenList :many
SELECT id, name, prefix, created_at, expires_at, last_used_at, revoked_at
FROM walhook.platform_token ORDER BY id;

-- name: PlatformTokenRevoke :execrows
UPDATE walhook.platform_token SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL;
