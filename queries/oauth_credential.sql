-- OAuthCredentialNextID takes the id of a credential about to be created from the table's
-- sequence, so its secrets can be sealed bound to the row before the insert.
-- name: OAuthCredentialNextID :one
SELECT nextval(pg_get_serial_sequence('walhook.oauth_credential', 'id'))::bigint AS id;

-- OAuthCredentialCreate inserts a credential with the id OAuthCredentialNextID gave.
-- name: OAuthCredentialCreate :one
INSERT INTO walhook.oauth_credential (id, company_id, name, token_url, method, grant_type, client_id,
    client_secret_enc, code_enc, scope, extra_params, extra_params_enc, refresh_token_enc, created_by, updated_by)
OVERRIDING SYSTEM VALUE
VALUES (@id, @company_id, @name, @token_url, @method, @grant_type, @client_id,
    sqlc.narg('client_secret_enc'), sqlc.narg('code_enc'), @scope, @extra_params,
    sqlc.narg('extra_params_enc'), sqlc.narg('refresh_token_enc'), sqlc.narg('created_by'), sqlc.narg('created_by'))
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
    extra_params_enc = sqlc.narg('extra_params_enc'),
    refresh_token_enc = sqlc.narg('refresh_token_enc'),
    access_token_enc = NULL, token_expires_at = NULL,
    updated_by = sqlc.narg('updated_by'), updated_at = now()
WHERE company_id = @company_id AND id = @id
RETURNING *;

-- OAuthCredentialCountByCompany counts a company's OAuth credentials, for the quota.
-- name: OAuthCredentialCountByCompany :one
SELECT count(*)::bigint FROM walhook.oauth_credential WHERE company_id = $1;

-- OAuthCredentialSealedBatch reads the sealed columns of up to max_rows credentials after
-- after_id, by id, for `walhook keys reseal`, with extra_params, whose hidden values written
-- before they were sealed it seals.
-- name: OAuthCredentialSealedBatch :many
SELECT id, company_id, client_secret_enc, code_enc, refresh_token_enc, access_token_enc,
    extra_params, extra_params_enc
FROM walhook.oauth_credential
WHERE id > @after_id
ORDER BY id
LIMIT @max_rows;

-- OAuthCredentialReseal writes re-sealed values when the row still holds the ones the caller
-- read; updated_at is left alone, so a token fetch in flight still saves its token.
-- name: OAuthCredentialReseal :execrows
UPDATE walhook.oauth_credential SET
    client_secret_enc = sqlc.narg('new_client_secret'), code_enc = sqlc.narg('new_code'),
    refresh_token_enc = sqlc.narg('new_refresh_token'), access_token_enc = sqlc.narg('new_access_token'),
    extra_params = @new_extra_params, extra_params_enc = sqlc.narg('new_extra_params_enc')
WHERE id = @id
  AND extra_params = @old_extra_params
  AND extra_params_enc IS NOT DISTINCT FROM sqlc.narg('old_extra_params_enc')
  AND client_secret_enc IS NOT DISTINCT FROM sqlc.narg('old_client_secret')
  AND code_enc IS NOT DISTINCT FROM sqlc.narg('old_code')
  AND refresh_token_enc IS NOT DISTINCT FROM sqlc.narg('old_refresh_token')
  AND access_token_enc IS NOT DISTINCT FROM sqlc.narg('old_access_token');
