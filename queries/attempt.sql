-- name: AttemptListByDelivery :many
SELECT * FROM walhook.attempt WHERE delivery_id = $1 ORDER BY n, id;
