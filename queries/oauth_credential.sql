-- name: OAuthCredentialCreate :one
INSERT INTO walhook.oauth_credential (company_id, name, token_url, method, grant_type, client_id,
    client_secret_enc, code_enc, scope, extra_params, refresh_token_enc, created_by, updated_by)
VALUES (@company_id, @name, @token_url, @method, @grant_type, @client_id,
    sqlc.narg('client_secret_enc'), sqlc.narg('code_enc'), @scope, @extra_params,
    sqlc.narg('refresh_token_enc'), sqlc.narg('created_by'), sqlc.narg('created_by'))
RETURNING *;

-- name: OAuthCredentialGet :one
SELECT * FROM walhook.oauth_credential WHERE company_id = $1 AND id = $2;

-- name: OAuthCredentialList :many
SELECT * FROM walhook.oauth_credential WHERE company_id = $1 ORDER BY name, id;

-- name: OAuthCredentialDelete :execrows
DELETE FROM walhook.oauth_credential WHERE company_id = $1 AND id = $2;

-- OAuthCredentialUpdate replaces a credential's fields. The caller passes the sealed secrets to
-- keep (the stored ones when the request left them out). A changed credential drops the cached
-- access token, so the relay fetches one with the new settings.
-- name: OAuthCredentialUpdate :one
UPDATE walhook.oauth_credential SET
    name = @name, token_url = @token_url, method = @method, grant_type = @grant_type,
    client_id = @client_id, client_secret_enc = sqlc.narg('client_secret_enc'),
    code_enc = sqlc.narg('code_enc'), scope = @scope, extra_params = @extra_params,
    refresh_token_enc = sqlc.narg('refresh_token_enc'),
    access_token_enc = NULL, token_expires_at = NULL,
    updated_by = sqlc.narg('updated_by'), updated_at = now()
WHERE company_id = @company_id AND id = @id
RETURNING *;

-- OAuthCredentialCountByCompany counts a company's OAuth credentials, for the quota.
-- name: OAuthCredentialCountByCompany :one
SELECT count(*)::bigint FROM walhook.oauth_credential WHERE company_id = $1;
