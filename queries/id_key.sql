-- IDKeyGet reads the public-id key (sealed); no row until the first process creates it.
-- name: IDKeyGet :one
SELECT key_enc FROM walhook.id_key WHERE id = 1;

-- IDKeyCreate stores a new public-id key unless another process stored one first; the caller
-- reads the winner back with IDKeyGet.
-- name: IDKeyCreate :exec
INSERT INTO walhook.id_key (id, key_enc) VALUES (1, @key_enc) ON CONFLICT (id) DO NOTHING;

-- IDKeyReseal rewrites the sealed key when it is still the value the caller read.
-- name: IDKeyReseal :execrows
UPDATE walhook.id_key SET key_enc = @new_enc WHERE id = 1 AND key_enc = @old_enc;
