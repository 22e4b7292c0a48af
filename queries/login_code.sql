-- LoginCodeCreate makes a sign-in code for a member of an enabled company; a disabled (or
-- unknown) company inserts nothing. The company row is locked FOR SHARE until the transaction
-- ends, so a concurrent disable (LoginCodeDeleteCompany after its UPDATE) either waits and then
-- ends this code too, or commits first and this insert finds the company disabled.
-- name: LoginCodeCreate :execrows
INSERT INTO walhook.login_code (code_hash, company_id, member_id, expires_at)
SELECT @code_hash::bytea, c.id, @member_id::bigint, @expires_at::timestamptz
FROM walhook.company c
WHERE c.id = @company_id AND c.disabled_at IS NULL
FOR SHARE OF c;

-- LoginCodeRedeem marks a code used and returns whom it signs in, and whether their company is
-- disabled; a used, expired or unknown code matches nothing. Concurrent redemptions of one code: the row lock lets exactly one win.
-- name: LoginCodeRedeem :one
UPDATE walhook.login_code SET used_at = now()
WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING company_id, member_id,
    (SELECT c.disabled_at IS NOT NULL FROM walhook.company c WHERE c.id = login_code.company_id)::boolean AS company_disabled;

-- LoginCodeRetentionDelete deletes a batch of codes that expired before the cutoff (retention).
-- name: LoginCodeRetentionDelete :execrows
DELETE FROM walhook.login_code AS lc
WHERE lc.code_hash IN (
    SELECT c.code_hash FROM walhook.login_code AS c WHERE c.expires_at < @cutoff ORDER BY c.expires_at LIMIT @max_rows
);

-- LoginCodeDeleteCompany ends every sign-in code of a company (when it is disabled): a portal
-- link minted before must not sign anyone in once the company is enabled again.
-- name: LoginCodeDeleteCompany :execrows
DELETE FROM walhook.login_code WHERE company_id = $1;
