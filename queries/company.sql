-- name: CompanyCreate :one
INSERT INTO walhook.company (id, name) VALUES ($1, $2)
RETURNING *;

-- name: CompanyGet :one
SELECT * FROM walhook.company WHERE id = $1;

-- name: CompanyList :many
SELECT * FROM walhook.company ORDER BY id;
