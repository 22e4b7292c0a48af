-- name: APITokenCreate :one
INSERT INTO walhook.api_token (company_id, member_id, name, token_hash, prefix, expires_at)
VALUES (@company_id, @member_id, @name, @token_hash, @prefix, sqlc.narg('expires_at'))
RETURNING *;

-- APITokenAuthenticate resolves a token hash to its member, with the member's permissions and
-- whether the member's company is disabled. A revoked or expired token matches nothing.
-- name: APITokenAuthenticate :one
SELECT t.id AS token_id, m.company_id, m.id AS member_id, m.email, m.name, m.is_owner, m.role_id,
       (SELECT c.disabled_at IS NOT NULL FROM walhook.company c WHERE c.id = m.company_id)::boolean AS company_disabled,
       coalesce((SELECT array_agg(rp.permission ORDER BY rp.permission)
                 FROM walhook.role_permission rp WHERE rp.role_id = m.role_id), '{}')::text[] AS permissions
FROM walhook.api_token t
JOIN walhook.member m ON m.company_id = t.company_id AND m.id = t.member_id
WHERE t.token_hash = $1
  AND t.revoked_at IS NULL
  AND (t.expires_at IS NULL OR t.expires_at > now());

-- name: APITokenTouch :exec
UPDATE walhook.api_token SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: APITokenList :many
SELECT id, company_id, member_id, name, prefix, created_at, expires_at, last_used_at, revoked_at
FROM walhook.api_token WHERE company_id = $1 ORDER BY id;

-- name: APITokenRevoke :execrows
UPDATE walhook.api_token SET revoked_at = now()
WHERE company_id = $1 AND id = $2 AND revoked_at IS NULL;

-- APITokenCountActive counts a company's tokens that still authenticate (not revoked, not
-- expired), for the quota.
-- name: APITokenCountActive :one
SELECT count(*)::bigint FROM walhook.api_token
WHERE company_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());
