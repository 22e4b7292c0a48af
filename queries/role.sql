-- name: RoleCreate :one
INSERT INTO walhook.role (company_id, name) VALUES ($1, $2)
RETURNING *;

-- name: RoleGet :one
SELECT * FROM walhook.role WHERE company_id = $1 AND id = $2;

-- name: RoleList :many
SELECT * FROM walhook.role WHERE company_id = $1 ORDER BY name, id;

-- name: RolePermissionGrant :exec
INSERT INTO walhook.role_permission (company_id, role_id, permission) VALUES ($1, $2, $3)
ON CONFLICT (role_id, permission) DO NOTHING;

-- name: RolePermissionRevoke :exec
DELETE FROM walhook.role_permission WHERE company_id = $1 AND role_id = $2 AND permission = $3;

-- name: RolePermissionList :many
SELECT role_id, permission FROM walhook.role_permission WHERE company_id = $1 ORDER BY role_id, permission;

-- name: RoleGetByName :one
SELECT * FROM walhook.role WHERE company_id = $1 AND name = $2;

-- RoleDelete removes a role; its members keep their membership with no role (ON DELETE SET NULL).
-- name: RoleDelete :execrows
DELETE FROM walhook.role WHERE company_id = $1 AND id = $2;
