package store

import (
	"context"
	"time"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// PlatformToken describes a platform token (the host application's, not tied to a company)
// without its secret.
type PlatformToken struct {
	ID         int64
	Name       string
	Prefix     string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// PlatformPrincipal is who a platform token speaks for: the host application, through one of
// its tokens.
type PlatformPrincipal struct {
	TokenID int64
	Name    string
	Prefix  string
}

// Actor is how the audit log names the principal: "platform:<token name>", or the token's prefix
// when it has no name.
func (p PlatformPrincipal) Actor() string {
	if p.Name != "" {
		return "platform:" + p.Name
	}
	return "platform:" + p.Prefix
}

// PlatformTokenCreate makes a platform token and returns it in plaintext, the only time it is
// available; the database keeps its hash. expiresAt nil: it never expires.
func (s *Store) PlatformTokenCreate(ctx context.Context, name string, expiresAt *time.Time) (string, PlatformToken, error) {
	token, hash := crypt.NewPlatformToken()
	r, err := s.q.PlatformTokenCreate(ctx, dbsqlc.PlatformTokenCreateParams{
		Name: name, TokenHash: hash, Prefix: token[:len(crypt.PlatformTokenPrefix)+6], ExpiresAt: expiresAt,
	})
	if err != nil {
		return "", PlatformToken{}, mapErr(err)
	}
	return token, PlatformToken{ID: r.ID, Name: r.Name, Prefix: r.Prefix, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}, nil
}

// PlatformAuthenticate resolves a plaintext platform token. Unknown, revoked and expired tokens
// are ErrNotFound.
func (s *Store) PlatformAuthenticate(ctx context.Context, token string) (PlatformPrincipal, error) {
	r, err := s.q.PlatformTokenAuthenticate(ctx, crypt.HashToken(token))
	if err != nil {
		return PlatformPrincipal{}, mapErr(err)
	}
	if err := s.q.PlatformTokenTouch(ctx, r.ID); err != nil {
		return PlatformPrincipal{}, mapErr(err)
	}
	return PlatformPrincipal{TokenID: r.ID, Name: r.Name, Prefix: r.Prefix}, nil
}

// CompanyListAfter lists up to limit companies in id order after afterID ("" for the first page).
func (s *Store) CompanyListAfter(ctx context.Context, afterID string, limit int) ([]Company, error) {
	rows, err := s.q.CompanyListAfter(ctx, dbsqlc.CompanyListAfterParams{AfterID: afterID, MaxRows: int32(min(max(limit, 1), 1000))})
	return rowsAs(rows, err, companyFrom)
}

// CompanyRename sets a company's display name.
func (s *Store) CompanyRename(ctx context.Context, id, name string) (Company, error) {
	r, err := s.q.CompanyRename(ctx, dbsqlc.CompanyRenameParams{ID: id, Name: name})
	return companyFrom(r), mapErr(err)
}

// CompanySetDisabled disables or enables a company; disabling a disabled one keeps its
// DisabledAt. Disabling ends the company's unspent sign-in codes (portal links), so none signs a
// member in after the company is enabled again. The relay replicas are told (walhook_webhooks, at
// commit) to drop their cached webhooks, which carry whether their company is disabled.
func (s *Store) CompanySetDisabled(ctx context.Context, id string, disabled bool) (Company, error) {
	r, err := s.q.CompanySetDisabled(ctx, dbsqlc.CompanySetDisabledParams{ID: id, Disabled: disabled})
	if err != nil {
		return Company{}, mapErr(err)
	}
	if disabled {
		if _, err := s.q.LoginCodeDeleteCompany(ctx, id); err != nil {
			return Company{}, mapErr(err)
		}
	}
	if err := s.q.WebhooksChangedNotify(ctx); err != nil {
		return Company{}, mapErr(err)
	}
	return companyFrom(r), nil
}

// MemberDelete removes a member of a company with their API tokens and sign-in codes.
func (s *Store) MemberDelete(ctx context.Context, companyID string, id int64) error {
	return affected(s.q.MemberDelete(ctx, dbsqlc.MemberDeleteParams{CompanyID: companyID, ID: id}))
}

// RoleGetByName returns a role of a company by name, with its permissions.
func (s *Store) RoleGetByName(ctx context.Context, companyID, name string) (Role, error) {
	r, err := s.q.RoleGetByName(ctx, dbsqlc.RoleGetByNameParams{CompanyID: companyID, Name: name})
	if err != nil {
		return Role{}, mapErr(err)
	}
	return s.RoleGet(ctx, companyID, r.ID)
}

// RoleDelete removes a role of a company; its members keep their membership with no role.
func (s *Store) RoleDelete(ctx context.Context, companyID string, id int64) error {
	return affected(s.q.RoleDelete(ctx, dbsqlc.RoleDeleteParams{CompanyID: companyID, ID: id}))
}

// PlatformTokenList lists every platform token (never their secrets).
func (s *Store) PlatformTokenList(ctx context.Context) ([]PlatformToken, error) {
	rows, err := s.q.PlatformTokenList(ctx)
	return rowsAs(rows, err, func(r dbsqlc.PlatformTokenListRow) PlatformToken {
		return PlatformToken{ID: r.ID, Name: r.Name, Prefix: r.Prefix, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
			LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
	})
}

// PlatformTokenRevoke revokes a platform token; an unknown or already revoked one is ErrNotFound.
func (s *Store) PlatformTokenRevoke(ctx context.Context, id int64) error {
	return affected(s.q.PlatformTokenRevoke(ctx, id))
}
