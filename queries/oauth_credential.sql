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
