package store

import (
	"context"
	"time"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

// Company is a tenant: the application's own company id and a display name.
type Company struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// DisabledAt is when the platform API disabled the company (nil: enabled). A disabled
	// company's members cannot sign in or use tokens, its new events reach no webhook, and the
	// relay sees its webhooks off (DispatchWebhooks).
	DisabledAt *time.Time
}

// Member is a user of one company.
type Member struct {
	ID        int64
	CompanyID string
	Email     string
	Name      string
	IsOwner   bool
	RoleID    *int64
	CreatedAt time.Time
}

// Role groups permissions; the owner grants them.
type Role struct {
	ID          int64
	CompanyID   string
	Name        string
	Permissions []webhook.Permission
	CreatedAt   time.Time
}

// Principal is who an API token speaks for.
type Principal struct {
	TokenID     int64
	CompanyID   string
	MemberID    int64
	Email       string
	Name        string
	IsOwner     bool
	RoleID      *int64
	Permissions []webhook.Permission
	// CompanyDisabled: the member's company is disabled; the API refuses the token.
	CompanyDisabled bool
}

// Can reports whether the principal holds perm; the owner holds every permission.
func (p *Principal) Can(perm webhook.Permission) bool {
	if p.IsOwner {
		return true
	}
	for _, have := range p.Permissions {
		if have == perm {
			return true
		}
	}
	return false
}

// APIToken describes a token without its secret.
type APIToken struct {
	ID         int64
	CompanyID  string
	MemberID   int64
	Name       string
	Prefix     string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func companyFrom(r dbsqlc.WalhookCompany) Company {
	return Company{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, DisabledAt: r.DisabledAt}
}

// CompanyCreate creates a company with the application's id.
func (s *Store) CompanyCreate(ctx context.Context, id, name string) (Company, error) {
	r, err := s.q.CompanyCreate(ctx, dbsqlc.CompanyCreateParams{ID: id, Name: name})
	return companyFrom(r), mapErr(err)
}

// CompanyGet returns a company.
func (s *Store) CompanyGet(ctx context.Context, id string) (Company, error) {
	r, err := s.q.CompanyGet(ctx, id)
	return companyFrom(r), mapErr(err)
}

func memberFrom(r dbsqlc.WalhookMember) Member {
	return Member{ID: r.ID, CompanyID: r.CompanyID, Email: r.Email, Name: r.Name, IsOwner: r.IsOwner, RoleID: r.RoleID, CreatedAt: r.CreatedAt}
}

// MemberCreate adds a member to a company.
func (s *Store) MemberCreate(ctx context.Context, m Member) (Member, error) {
	r, err := s.q.MemberCreate(ctx, dbsqlc.MemberCreateParams{
		CompanyID: m.CompanyID, Email: m.Email, Name: m.Name, IsOwner: m.IsOwner, RoleID: m.RoleID,
	})
	return memberFrom(r), mapErr(err)
}

// MemberGet returns a member of a company.
func (s *Store) MemberGet(ctx context.Context, companyID string, id int64) (Member, error) {
	r, err := s.q.MemberGet(ctx, dbsqlc.MemberGetParams{CompanyID: companyID, ID: id})
	return memberFrom(r), mapErr(err)
}

// MemberGetByEmail returns a member of a company by email.
func (s *Store) MemberGetByEmail(ctx context.Context, companyID, email string) (Member, error) {
	r, err := s.q.MemberGetByEmail(ctx, dbsqlc.MemberGetByEmailParams{CompanyID: companyID, Email: email})
	return memberFrom(r), mapErr(err)
}

// MemberList lists a company's members.
func (s *Store) MemberList(ctx context.Context, companyID string) ([]Member, error) {
	rows, err := s.q.MemberList(ctx, companyID)
	return rowsAs(rows, err, memberFrom)
}

// MemberSetRole assigns a member to a role of the same company (nil: no role).
func (s *Store) MemberSetRole(ctx context.Context, companyID string, memberID int64, roleID *int64) (Member, error) {
	r, err := s.q.MemberSetRole(ctx, dbsqlc.MemberSetRoleParams{CompanyID: companyID, ID: memberID, RoleID: roleID})
	return memberFrom(r), mapErr(err)
}

// RoleCreate creates a role with no permissions.
func (s *Store) RoleCreate(ctx context.Context, companyID, name string) (Role, error) {
	r, err := s.q.RoleCreate(ctx, dbsqlc.RoleCreateParams{CompanyID: companyID, Name: name})
	if err != nil {
		return Role{}, mapErr(err)
	}
	return Role{ID: r.ID, CompanyID: r.CompanyID, Name: r.Name, CreatedAt: r.CreatedAt, Permissions: []webhook.Permission{}}, nil
}

// RoleGet returns a role of a company with its permissions.
func (s *Store) RoleGet(ctx context.Context, companyID string, id int64) (Role, error) {
	roles, err := s.RoleList(ctx, companyID)
	if err != nil {
		return Role{}, err
	}
	for _, r := range roles {
		if r.ID == id {
			return r, nil
		}
	}
	return Role{}, ErrNotFound
}

// RoleList lists a company's roles with their permissions.
func (s *Store) RoleList(ctx context.Context, companyID string) ([]Role, error) {
	rows, err := s.q.RoleList(ctx, companyID)
	if err != nil {
		return nil, mapErr(err)
	}
	perms, err := s.q.RolePermissionList(ctx, companyID)
	if err != nil {
		return nil, mapErr(err)
	}
	byRole := map[int64][]webhook.Permission{}
	for _, p := range perms {
		byRole[p.RoleID] = append(byRole[p.RoleID], webhook.Permission(p.Permission))
	}
	out := make([]Role, len(rows))
	for i, r := range rows {
		ps := byRole[r.ID]
		if ps == nil {
			ps = []webhook.Permission{}
		}
		out[i] = Role{ID: r.ID, CompanyID: r.CompanyID, Name: r.Name, CreatedAt: r.CreatedAt, Permissions: ps}
	}
	return out, nil
}

// RoleSetPermissions replaces a role's permissions.
func (s *Store) RoleSetPermissions(ctx context.Context, companyID string, roleID int64, perms []webhook.Permission) (Role, error) {
	err := s.Tx(ctx, func(tx *Store) error {
		role, err := tx.RoleGet(ctx, companyID, roleID)
		if err != nil {
			return err
		}
		want := map[webhook.Permission]bool{}
		for _, p := range perms {
			want[p] = true
			if err := tx.q.RolePermissionGrant(ctx, dbsqlc.RolePermissionGrantParams{CompanyID: companyID, RoleID: roleID, Permission: string(p)}); err != nil {
				return mapErr(err)
			}
		}
		for _, p := range role.Permissions {
			if !want[p] {
				if err := tx.q.RolePermissionRevoke(ctx, dbsqlc.RolePermissionRevokeParams{CompanyID: companyID, RoleID: roleID, Permission: string(p)}); err != nil {
					return mapErr(err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return Role{}, err
	}
	return s.RoleGet(ctx, companyID, roleID)
}

// APITokenCreate makes a new token for a member and returns it in plaintext, the only time it is
// ever available; the database keeps its hash.
func (s *Store) APITokenCreate(ctx context.Context, companyID string, memberID int64, name string, expiresAt *time.Time) (string, APIToken, error) {
	token, hash := crypt.NewToken()
	r, err := s.q.APITokenCreate(ctx, dbsqlc.APITokenCreateParams{
		CompanyID: companyID, MemberID: memberID, Name: name, TokenHash: hash,
		Prefix: token[:len(crypt.TokenPrefix)+6], ExpiresAt: expiresAt,
	})
	if err != nil {
		return "", APIToken{}, mapErr(err)
	}
	return token, APIToken{
		ID: r.ID, CompanyID: r.CompanyID, MemberID: r.MemberID, Name: r.Name, Prefix: r.Prefix,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
	}, nil
}

// Authenticate resolves a plaintext API token to its principal. Unknown, revoked and expired
// tokens are ErrNotFound.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	r, err := s.q.APITokenAuthenticate(ctx, crypt.HashToken(token))
	if err != nil {
		return Principal{}, mapErr(err)
	}
	perms := make([]webhook.Permission, len(r.Permissions))
	for i, p := range r.Permissions {
		perms[i] = webhook.Permission(p)
	}
	if err := s.q.APITokenTouch(ctx, r.TokenID); err != nil {
		return Principal{}, mapErr(err)
	}
	return Principal{
		TokenID: r.TokenID, CompanyID: r.CompanyID, MemberID: r.MemberID, Email: r.Email, Name: r.Name,
		IsOwner: r.IsOwner, RoleID: r.RoleID, Permissions: perms, CompanyDisabled: r.CompanyDisabled,
	}, nil
}

// APITokenList lists a company's tokens (never their secrets).
func (s *Store) APITokenList(ctx context.Context, companyID string) ([]APIToken, error) {
	rows, err := s.q.APITokenList(ctx, companyID)
	return rowsAs(rows, err, func(r dbsqlc.APITokenListRow) APIToken {
		return APIToken{
			ID: r.ID, CompanyID: r.CompanyID, MemberID: r.MemberID, Name: r.Name, Prefix: r.Prefix,
			CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt,
		}
	})
}

// APITokenRevoke revokes a token of a company.
func (s *Store) APITokenRevoke(ctx context.Context, companyID string, id int64) error {
	return affected(s.q.APITokenRevoke(ctx, dbsqlc.APITokenRevokeParams{CompanyID: companyID, ID: id}))
}
