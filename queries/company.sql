-- name: CompanyCreate :one
INSERT INTO walhook.company (id, name) VALUES ($1, $2)
RETURNING *;

-- name: CompanyGet :one
SELECT * FROM walhook.company WHERE id = $1;

-- name: CompanyList :many
SELECT * FROM walhook.company ORDER BY id;

-- CompanyLockForQuota locks a company's row until the transaction ends, so that counting its
-- objects and inserting one is atomic across concurrent requests (per-company quotas). NO KEY
-- UPDATE conflicts with itself but not with the KEY SHARE locks that inserts referencing the
-- company take, so it does not hold up fan-out or dispatch.
-- name: CompanyLockForQuota :one
SELECT id FROM walhook.company WHERE id = $1 FOR NO KEY UPDATE;
