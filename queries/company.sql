-- name: CompanyCreate :one
INSERT INTO walhook.company (id, name) VALUES ($1, $2)
RETURNING *;

-- name: CompanyGet :one
SELECT * FROM walhook.company WHERE id = $1;

-- CompanyLockForQuota locks a company's row until the transaction ends, so that counting its
-- objects and inserting one is atomic across concurrent requests (per-company quotas). NO KEY
-- UPDATE conflicts with itself but not with the KEY SHARE locks that inserts referencing the
-- company take, so it does not hold up fan-out or dispatch.
-- name: CompanyLockForQuota :one
SELECT id FROM walhook.company WHERE id = $1 FOR NO KEY UPDATE;

-- CompanyListAfter is a page of companies in id order after the cursor ('' for the first page).
-- name: CompanyListAfter :many
SELECT * FROM walhook.company WHERE id > @after_id::text ORDER BY id LIMIT @max_rows;

-- name: CompanyRename :one
UPDATE walhook.company SET name = @name WHERE id = @id
RETURNING *;

-- CompanySetDisabled disables (keeping the first disabled_at) or enables a company.
-- name: CompanySetDisabled :one
UPDATE walhook.company
SET disabled_at = CASE WHEN @disabled::boolean THEN coalesce(disabled_at, now()) END
WHERE id = @id
RETURNING *;
