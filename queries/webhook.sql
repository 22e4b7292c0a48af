-- WebhookNextID takes the id of a webhook about to be created from the table's sequence, so its
-- secrets can be sealed bound to the row before the insert.
-- name: WebhookNextID :one
SELECT nextval(pg_get_serial_sequence('walhook.webhook', 'id'))::bigint AS id;

-- WebhookCreate inserts a webhook with the id WebhookNextID gave.
-- name: WebhookCreate :one
INSERT INTO walhook.webhook (id, company_id, name, url, method, event_keys, oauth_id, headers,
    secret_headers_enc, raw_data, params, active, rate_limit, signing_secret_enc, created_by, updated_by)
OVERRIDING SYSTEM VALUE
VALUES (@id, @company_id, @name, @url, @method, @event_keys::text[], sqlc.narg('oauth_id'), @headers,
    sqlc.narg('secret_headers_enc'), @raw_data, @params, @active, sqlc.narg('rate_limit'), @signing_secret_enc,
    sqlc.narg('created_by'), sqlc.narg('created_by'))
RETURNING *;

-- name: WebhookGet :one
SELECT * FROM walhook.webhook WHERE company_id = $1 AND id = $2;

-- WebhookCompany returns a webhook's company, whatever it is: for relay/store/storetest (tests
-- only), which then reads the webhook through the company-scoped WebhookGet.
-- name: WebhookCompany :one
SELECT company_id FROM walhook.webhook WHERE id = $1;

-- name: WebhookList :many
SELECT * FROM walhook.webhook
WHERE company_id = @company_id AND id > @after_id
ORDER BY id
LIMIT @max_rows;

-- name: WebhookUpdate :one
UPDATE walhook.webhook SET
    name = @name, url = @url, method = @method, event_keys = @event_keys::text[], oauth_id = sqlc.narg('oauth_id'),
    headers = @headers, secret_headers_enc = sqlc.narg('secret_headers_enc'), raw_data = @raw_data,
    params = @params, active = @active, rate_limit = sqlc.narg('rate_limit'), updated_by = sqlc.narg('updated_by'), updated_at = now(),
    disabled_reason = CASE WHEN @active::boolean THEN NULL ELSE disabled_reason END,
    disabled_at = CASE WHEN @active::boolean THEN NULL ELSE disabled_at END,
    failing_since = CASE WHEN @active::boolean AND NOT active THEN NULL ELSE failing_since END
WHERE company_id = @company_id AND id = @id
RETURNING *;

-- name: WebhookDelete :execrows
DELETE FROM walhook.webhook WHERE company_id = $1 AND id = $2;

-- WebhooksChangedNotify tells every relay replica to drop its cached webhook configuration; it
-- is sent when the surrounding transaction commits.
-- name: WebhooksChangedNotify :exec
SELECT pg_notify('walhook_webhooks', '');

-- WebhookListByName is the admin listing sorted by name: filters are optional (NULL: any; an
-- event matches a webhook subscribed to it among others), the cursor is the (name, id) of the
-- last row of the previous page. Counts come from the history, through walhook.webhook_counts
-- (migration 0030), which the planner inlines: one index-only scan of delivery_webhook_time_idx per
-- webhook of the page. coalesce keeps the columns non-null bigints for sqlc.
-- name: WebhookListByName :many
SELECT sqlc.embed(w),
       coalesce(c.triggered, 0)::bigint AS triggered,
       coalesce(c.succeeded, 0)::bigint AS succeeded,
       coalesce(c.failed, 0)::bigint AS failed,
       coalesce(c.pending, 0)::bigint AS pending
FROM walhook.webhook w
LEFT JOIN LATERAL walhook.webhook_counts(w.id) c ON true
WHERE w.company_id = @company_id
  AND (sqlc.narg('event_key')::text IS NULL OR sqlc.narg('event_key') = ANY(w.event_keys))
  AND (sqlc.narg('active')::boolean IS NULL OR w.active = sqlc.narg('active'))
  AND (sqlc.narg('last_status')::text IS NULL OR w.last_status = sqlc.narg('last_status'))
  AND (sqlc.narg('after_name')::text IS NULL OR (w.name, w.id) > (sqlc.narg('after_name')::text, @after_id::bigint))
ORDER BY w.name, w.id
LIMIT @max_rows;

-- WebhookListByLastSent is the admin listing, most recently sent first (never sent last); the
-- cursor is the (last_sent_at or year 1, id) of the last row of the previous page. It repeats
-- WebhookListByName's columns, filters and counts (walhook.webhook_counts) but for the
-- cursor and the order: sqlc cannot take an ORDER BY as a parameter, and an order chosen by one
-- (CASE) is an expression no index matches, so the by-name page could no longer walk
-- webhook_company_name_idx.
-- name: WebhookListByLastSent :many
SELECT sqlc.embed(w),
       coalesce(c.triggered, 0)::bigint AS triggered,
       coalesce(c.succeeded, 0)::bigint AS succeeded,
       coalesce(c.failed, 0)::bigint AS failed,
       coalesce(c.pending, 0)::bigint AS pending
FROM walhook.webhook w
LEFT JOIN LATERAL walhook.webhook_counts(w.id) c ON true
WHERE w.company_id = @company_id
  AND (sqlc.narg('event_key')::text IS NULL OR sqlc.narg('event_key') = ANY(w.event_keys))
  AND (sqlc.narg('active')::boolean IS NULL OR w.active = sqlc.narg('active'))
  AND (sqlc.narg('last_status')::text IS NULL OR w.last_status = sqlc.narg('last_status'))
  AND (sqlc.narg('after_sent')::timestamptz IS NULL
       OR (coalesce(w.last_sent_at, '0001-01-01 00:00:00+00'::timestamptz), w.id) < (sqlc.narg('after_sent')::timestamptz, @after_id::bigint))
ORDER BY coalesce(w.last_sent_at, '0001-01-01 00:00:00+00'::timestamptz) DESC, w.id DESC
LIMIT @max_rows;

-- WebhookCounts is the history totals of one webhook of a company.
-- name: WebhookCounts :one
SELECT count(*)::bigint AS triggered,
       count(*) FILTER (WHERE d.state = 'succeeded')::bigint AS succeeded,
       count(*) FILTER (WHERE d.state = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE d.state = 'pending')::bigint AS pending
FROM walhook.delivery d
WHERE d.company_id = @company_id AND d.webhook_id = @webhook_id;

-- WebhookNamesByOAuth names the webhooks of a company that use a credential.
-- name: WebhookNamesByOAuth :many
SELECT id, name FROM walhook.webhook
WHERE company_id = @company_id AND oauth_id = @oauth_id
ORDER BY name, id;

-- WebhookRotateSecret makes a new signing secret current; the old one keeps signing until
-- previous_expires_at so receivers can switch without dropping requests.
-- name: WebhookRotateSecret :one
UPDATE walhook.webhook SET
    previous_secret_enc = @previous_secret_enc,
    previous_secret_expires_at = @previous_expires_at,
    signing_secret_enc = @signing_secret_enc,
    updated_by = sqlc.narg('updated_by'), updated_at = now()
WHERE company_id = @company_id AND id = @id
RETURNING *;

-- WebhookCountByCompany counts a company's webhooks, for the quota.
-- name: WebhookCountByCompany :one
SELECT count(*)::bigint FROM walhook.webhook WHERE company_id = $1;

-- WebhookSealedBatch reads the sealed columns of up to max_rows webhooks after after_id, by id,
-- for `walhook keys reseal`, with headers, whose hidden values written before they were sealed
-- it seals.
-- name: WebhookSealedBatch :many
SELECT id, company_id, signing_secret_enc, previous_secret_enc, secret_headers_enc, headers
FROM walhook.webhook
WHERE id > @after_id
ORDER BY id
LIMIT @max_rows;

-- WebhookReseal writes re-sealed values when the row still holds the ones the caller read (a
-- concurrent edit wins: it sealed with the current key already).
-- name: WebhookReseal :execrows
UPDATE walhook.webhook SET
    signing_secret_enc = @new_signing, previous_secret_enc = sqlc.narg('new_previous'),
    secret_headers_enc = sqlc.narg('new_headers'), headers = @new_plain_headers
WHERE id = @id AND signing_secret_enc = @old_signing
  AND headers = @old_plain_headers
  AND previous_secret_enc IS NOT DISTINCT FROM sqlc.narg('old_previous')
  AND secret_headers_enc IS NOT DISTINCT FROM sqlc.narg('old_headers');
