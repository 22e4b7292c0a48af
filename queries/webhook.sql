-- name: WebhookCreate :one
INSERT INTO walhook.webhook (company_id, name, url, method, event_key, oauth_id, headers,
    secret_headers_enc, raw_data, params, active, signing_secret_enc, created_by, updated_by)
VALUES (@company_id, @name, @url, @method, @event_key, sqlc.narg('oauth_id'), @headers,
    sqlc.narg('secret_headers_enc'), @raw_data, @params, @active, @signing_secret_enc,
    sqlc.narg('created_by'), sqlc.narg('created_by'))
RETURNING *;

-- name: WebhookGet :one
SELECT * FROM walhook.webhook WHERE company_id = $1 AND id = $2;

-- WebhookGetByID is for the relay, which works across companies; the admin API never uses it.
-- name: WebhookGetByID :one
SELECT * FROM walhook.webhook WHERE id = $1;

-- name: WebhookList :many
SELECT * FROM walhook.webhook
WHERE company_id = @company_id AND id > @after_id
ORDER BY id
LIMIT @max_rows;

-- name: WebhookUpdate :one
UPDATE walhook.webhook SET
    name = @name, url = @url, method = @method, event_key = @event_key, oauth_id = sqlc.narg('oauth_id'),
    headers = @headers, secret_headers_enc = sqlc.narg('secret_headers_enc'), raw_data = @raw_data,
    params = @params, active = @active, updated_by = sqlc.narg('updated_by'), updated_at = now(),
    disabled_reason = CASE WHEN @active::boolean THEN NULL ELSE disabled_reason END,
    disabled_at = CASE WHEN @active::boolean THEN NULL ELSE disabled_at END,
    failing_since = CASE WHEN @active::boolean AND NOT active THEN NULL ELSE failing_since END
WHERE company_id = @company_id AND id = @id
RETURNING *;

-- name: WebhookDelete :execrows
DELETE FROM walhook.webhook WHERE company_id = $1 AND id = $2;

-- WebhookListActive feeds the relay's in-memory fan-out index.
-- name: WebhookListActive :many
SELECT id, company_id, event_key FROM walhook.webhook WHERE active ORDER BY id;

-- WebhooksChangedNotify tells every relay replica to refresh its fan-out index; it is sent when
-- the surrounding transaction commits.
-- name: WebhooksChangedNotify :exec
SELECT pg_notify('walhook_webhooks', '');
