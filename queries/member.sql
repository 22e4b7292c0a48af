-- name: MemberCreate :one
INSERT INTO walhook.member (company_id, email, name, is_owner, role_id)
VALUES (@company_id, @email, @name, @is_owner, sqlc.narg('role_id'))
RETURNING *;

-- name: MemberGet :one
SELECT * FROM walhook.member WHERE company_id = $1 AND id = $2;

-- name: MemberGetByEmail :one
SELECT * FROM walhook.member WHERE company_id = $1 AND email = $2;

-- name: MemberList :many
SELECT * FROM walhook.member WHERE company_id = $1 ORDER BY id;

-- name: MemberSetRole :one
UPDATE walhook.member SET role_id = sqlc.narg('role_id')
WHERE company_id = @company_id AND id = @id
RETURNING *;

-- MemberDelete removes a member; their API tokens and sign-in codes go with them (cascade).
-- name: MemberDelete :execrows
DELETE FROM walhook.member WHERE company_id = $1 AND id = $2;
