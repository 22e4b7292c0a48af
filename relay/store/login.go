package store

import (
	"context"
	"time"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// LoginCodeCreate makes a one-time sign-in code for a member, valid for ttl, and returns it in
// plaintext (the only time it is available; the database keeps its hash). A disabled (or unknown)
// company gets none: ErrCompanyDisabled. Disabling a company while a code is being made waits for
// it and ends it (CompanySetDisabled).
func (s *Store) LoginCodeCreate(ctx context.Context, companyID string, memberID int64, ttl time.Duration) (string, error) {
	code, hash := crypt.NewLoginCode()
	n, err := s.q.LoginCodeCreate(ctx, dbsqlc.LoginCodeCreateParams{
		CodeHash: hash, CompanyID: companyID, MemberID: memberID, ExpiresAt: time.Now().Add(ttl),
	})
	if err != nil {
		return "", mapErr(err)
	}
	if n == 0 {
		return "", ErrCompanyDisabled
	}
	return code, nil
}

// LoginCodeRedeem spends a one-time sign-in code and returns a new API token for its member,
// expiring after tokenTTL. A used, expired or unknown code is ErrNotFound. A code of a disabled
// company is ErrCompanyDisabled and spent: it does not sign anyone in once the company is enabled
// again. Otherwise the code is spent, the token created and the sign-in audited in one
// transaction, so a failure leaves the code usable.
func (s *Store) LoginCodeRedeem(ctx context.Context, code string, tokenTTL time.Duration) (string, APIToken, error) {
	var token string
	var info APIToken
	disabled := false
	err := s.Tx(ctx, func(tx *Store) error {
		r, err := tx.q.LoginCodeRedeem(ctx, crypt.HashToken(code))
		if err != nil {
			return mapErr(err)
		}
		if r.CompanyDisabled {
			disabled = true
			return nil
		}
		exp := time.Now().Add(tokenTTL)
		if token, info, err = tx.APITokenCreate(ctx, r.CompanyID, r.MemberID, "web sign-in", &exp); err != nil {
			return err
		}
		// A portal link is a credential the platform mints for a member: its use is recorded
		// beside its minting (portal_link_created), as a token created through the API is.
		return tx.AuditRecord(ctx, r.CompanyID, &r.MemberID, "signed_in", AuditToken, info.ID, map[string]any{"name": info.Name})
	})
	if err != nil {
		return "", APIToken{}, err
	}
	if disabled {
		return "", APIToken{}, ErrCompanyDisabled
	}
	return token, info, nil
}

// RetentionDeleteLoginCodes deletes up to batch sign-in codes that expired before cutoff.
func (s *Store) RetentionDeleteLoginCodes(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	n, err := s.q.LoginCodeRetentionDelete(ctx, dbsqlc.LoginCodeRetentionDeleteParams{Cutoff: cutoff, MaxRows: int32(min(batch, 1<<20))})
	return n, mapErr(err)
}
