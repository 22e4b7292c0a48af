-- name: AuditLogInsert :exec
INSERT INTO walhook.audit_log (company_id, member_id, actor, action, object_type, object_id, detail)
VALUES (@company_id, sqlc.narg('member_id'), sqlc.narg('actor'), @action, @object_type, @object_id, @detail);

-- AuditLogList lists a company's audit rows, newest first, optionally for one object type or
-- object; before_id is the cursor (the id of the last row of the previous page, 0 for the first).
-- name: AuditLogList :many
SELECT a.id, a.company_id, a.member_id, a.actor, a.action, a.object_type, a.object_id, a.detail, a.at,
       m.email AS member_email
FROM walhook.audit_log a
LEFT JOIN walhook.member m ON m.company_id = a.company_id AND m.id = a.member_id
WHERE a.company_id = @company_id
  AND (sqlc.narg('object_type')::text IS NULL OR a.object_type = sqlc.narg('object_type'))
  AND (sqlc.narg('object_id')::bigint IS NULL OR a.object_id = sqlc.narg('object_id'))
  AND (@before_id::bigint = 0 OR a.id < @before_id::bigint)
ORDER BY a.id DESC
LIMIT @max_rows;
