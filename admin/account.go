package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// allPermissions are the permissions a role can hold, and the owner's.
var allPermissions = []webhook.Permission{webhook.PermManageWebhooks}

type memberJSON struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	IsOwner   bool      `json:"is_owner"`
	RoleID    *int64    `json:"role_id"`
	CreatedAt time.Time `json:"created_at"`
}

func memberOut(m store.Member) memberJSON {
	return memberJSON{ID: m.ID, Email: m.Email, Name: m.Name, IsOwner: m.IsOwner, RoleID: m.RoleID, CreatedAt: m.CreatedAt}
}

type roleJSON struct {
	ID          int64                `json:"id"`
	Name        string               `json:"name"`
	Permissions []webhook.Permission `json:"permissions"`
	CreatedAt   time.Time            `json:"created_at"`
}

func roleOut(r store.Role) roleJSON {
	return roleJSON{ID: r.ID, Name: r.Name, Permissions: r.Permissions, CreatedAt: r.CreatedAt}
}

func (s *Server) getMe(c *call) error {
	co, err := s.store.CompanyGet(c.ctx, c.p.CompanyID)
	if err != nil {
		return err
	}
	m, err := s.store.MemberGet(c.ctx, c.p.CompanyID, c.p.MemberID)
	if err != nil {
		return err
	}
	var role *roleJSON
	if m.RoleID != nil {
		if r, err := s.store.RoleGet(c.ctx, c.p.CompanyID, *m.RoleID); err == nil {
			ro := roleOut(r)
			role = &ro
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	perms := []webhook.Permission{}
	for _, p := range allPermissions {
		if c.p.Can(p) {
			perms = append(perms, p)
		}
	}
	return c.json(http.StatusOK, map[string]any{
		"company":     map[string]any{"id": co.ID, "name": co.Name},
		"member":      memberOut(m),
		"role":        role,
		"permissions": perms,
	})
}

type eventTypeJSON struct {
	Key         string `json:"key"`
	Description string `json:"description"`
	Sample      any    `json:"sample"`
}

func (s *Server) listEvents(c *call) error {
	types, err := s.store.EventTypeList(c.ctx)
	if err != nil {
		return err
	}
	page := listPage[eventTypeJSON]{Items: []eventTypeJSON{}}
	for _, t := range types {
		if t.RetiredAt != nil {
			continue
		}
		var sample any = t.Sample
		if len(t.Sample) == 0 {
			sample = map[string]any{}
		}
		page.Items = append(page.Items, eventTypeJSON{Key: t.Key, Description: t.Description, Sample: sample})
	}
	return c.json(http.StatusOK, page)
}

// eventFields answers the fields a parameter can select for a webhook subscribed to the events
// of the query (events=a,b; at most webhook.MaxEvents, each once): those every one of them has
// (webhook.CommonFields), which is what validation accepts. Retired events are named too, so the
// form of a webhook that still has one shows its fields.
func (s *Server) eventFields(c *call) error {
	keys, err := parseEventsQuery(c.r.URL.Query().Get("events"))
	if err != nil {
		return err
	}
	types, err := s.store.EventTypeList(c.ctx)
	if err != nil {
		return err
	}
	byKey := make(map[string]webhook.EventType, len(types))
	for _, t := range types {
		byKey[t.Key] = t
	}
	sets := make([]webhook.FieldSet, len(keys))
	for i, k := range keys {
		t, ok := byKey[k]
		if !ok {
			return badRequest("events", fmt.Sprintf("unknown trigger event %q", k))
		}
		sets[i] = webhook.NewFieldSet(t.Sample)
	}
	return c.json(http.StatusOK, map[string]any{"events": keys, "items": webhook.CommonFields(sets...)})
}

// parseEventsQuery reads the events query parameter: trigger events separated by commas, at most
// webhook.MaxEvents, each once (400 naming events otherwise).
func parseEventsQuery(raw string) ([]string, error) {
	if raw == "" {
		return nil, badRequest("events", "is required: a comma-separated list of trigger events")
	}
	keys := strings.Split(raw, ",")
	if len(keys) > webhook.MaxEvents {
		return nil, badRequest("events", fmt.Sprintf("must have at most %d trigger events", webhook.MaxEvents))
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			return nil, badRequest("events", fmt.Sprintf("duplicate trigger event %q", k))
		}
		seen[k] = true
	}
	return keys, nil
}

func (s *Server) listRoles(c *call) error {
	roles, err := s.store.RoleList(c.ctx, c.p.CompanyID)
	if err != nil {
		return err
	}
	page := listPage[roleJSON]{Items: make([]roleJSON, len(roles))}
	for i, r := range roles {
		page.Items[i] = roleOut(r)
	}
	return c.json(http.StatusOK, page)
}

type permissionsInput struct {
	Permissions []webhook.Permission `json:"permissions"`
}

func validatePermissions(e *webhook.ValidationError, ps []webhook.Permission) {
	for i, p := range ps {
		ok := false
		for _, q := range allPermissions {
			ok = ok || p == q
		}
		if !ok {
			e.Add(fmt.Sprintf("permissions[%d]", i), "unknown permission %q (known: manage_webhooks)", p)
		}
	}
}

// roleInput is the body that creates a role, through the company API and the platform API.
type roleInput struct {
	Name        string               `json:"name"`
	Permissions []webhook.Permission `json:"permissions"`
}

// decodeRole reads and checks a new role: a valid name that is not the built-in owner role, and
// known permissions.
func decodeRole(c *call) (roleInput, error) {
	var in roleInput
	if err := c.decode(&in, false); err != nil {
		return in, err
	}
	e := &webhook.ValidationError{}
	webhook.ValidateName(e, "name", in.Name)
	validatePermissions(e, in.Permissions)
	if err := e.Err(); err != nil {
		return in, err
	}
	if in.Name == ownerRole {
		return in, &problem{Status: http.StatusConflict, Detail: "owner is the built-in role of every company",
			Errors: []webhook.FieldError{{Field: "name", Message: "another role has this name"}}}
	}
	return in, nil
}

// roleCreate creates a role of company with its permissions, and its audit entry (audit, given
// the role as created), in one transaction.
func (s *Server) roleCreate(c *call, company string, in roleInput, audit func(tx *store.Store, r store.Role, details map[string]any) error) (store.Role, error) {
	var out store.Role
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		r, err := tx.RoleCreate(c.ctx, company, in.Name)
		if err != nil {
			return err
		}
		if out, err = tx.RoleSetPermissions(c.ctx, company, r.ID, in.Permissions); err != nil {
			return err
		}
		return audit(tx, r, map[string]any{"name": r.Name, "permissions": out.Permissions})
	})
	return out, err
}

func (s *Server) createRole(c *call) error {
	in, err := decodeRole(c)
	if err != nil {
		return err
	}
	out, err := s.roleCreate(c, c.p.CompanyID, in, func(tx *store.Store, r store.Role, details map[string]any) error {
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "created", store.AuditRole, r.ID, details)
	})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", fmt.Sprintf("/v1/roles/%d", out.ID))
	return c.json(http.StatusCreated, roleOut(out))
}

func (s *Server) setRolePermissions(c *call) error {
	id, err := c.pathID("role")
	if err != nil {
		return err
	}
	var in permissionsInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	e := &webhook.ValidationError{}
	if in.Permissions == nil {
		e.Add("permissions", "is required (an empty list revokes every permission)")
	}
	validatePermissions(e, in.Permissions)
	if err := e.Err(); err != nil {
		return err
	}
	var out store.Role
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if out, err = tx.RoleSetPermissions(c.ctx, c.p.CompanyID, id, in.Permissions); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "permissions_set", store.AuditRole, id,
			map[string]any{"permissions": out.Permissions})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("role", id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, roleOut(out))
}

func (s *Server) listMembers(c *call) error {
	ms, err := s.store.MemberList(c.ctx, c.p.CompanyID)
	if err != nil {
		return err
	}
	page := listPage[memberJSON]{Items: make([]memberJSON, len(ms))}
	for i, m := range ms {
		page.Items[i] = memberOut(m)
	}
	return c.json(http.StatusOK, page)
}

func (s *Server) patchMember(c *call) error {
	id, err := c.pathID("member")
	if err != nil {
		return err
	}
	m, err := s.store.MemberGet(c.ctx, c.p.CompanyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("member", id)
	}
	if err != nil {
		return err
	}
	in := struct {
		RoleID *int64 `json:"role_id"`
	}{RoleID: m.RoleID}
	if err := c.decode(&in, false); err != nil {
		return err
	}
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		if in.RoleID != nil {
			if _, err := tx.RoleGet(c.ctx, c.p.CompanyID, *in.RoleID); errors.Is(err, store.ErrNotFound) {
				return &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("role %d not found", *in.RoleID),
					Errors: []webhook.FieldError{{Field: "role_id", Message: "no such role"}}}
			} else if err != nil {
				return err
			}
		}
		var err error
		if m, err = tx.MemberSetRole(c.ctx, c.p.CompanyID, id, in.RoleID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "role_set", store.AuditMember, id, map[string]any{"role_id": in.RoleID})
	})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, memberOut(m))
}

type tokenJSON struct {
	ID         int64      `json:"id"`
	MemberID   int64      `json:"member_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Token      string     `json:"token,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func tokenOut(t store.APIToken) tokenJSON {
	return tokenJSON{ID: t.ID, MemberID: t.MemberID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

// listTokens lists the caller's tokens; the owner sees every member's.
func (s *Server) listTokens(c *call) error {
	ts, err := s.store.APITokenList(c.ctx, c.p.CompanyID)
	if err != nil {
		return err
	}
	page := listPage[tokenJSON]{Items: []tokenJSON{}}
	for _, t := range ts {
		if c.p.IsOwner || t.MemberID == c.p.MemberID {
			page.Items = append(page.Items, tokenOut(t))
		}
	}
	return c.json(http.StatusOK, page)
}

// createToken makes a token for the caller; the plaintext is in this response only. Its lifetime
// is expires_in_days, at most the server's TokenMaxLifetime, which is also what an omitted (or 0)
// expires_in_days gets; only a server without a cap makes tokens that never expire.
func (s *Server) createToken(c *call) error {
	var in struct {
		Name          string `json:"name"`
		ExpiresInDays int    `json:"expires_in_days"` // 0: the longest allowed
	}
	if err := c.decode(&in, false); err != nil {
		return err
	}
	e := &webhook.ValidationError{}
	webhook.ValidateName(e, "name", in.Name)
	life := time.Duration(in.ExpiresInDays) * 24 * time.Hour
	maxLife := s.cfg.TokenMaxLifetime
	switch {
	case in.ExpiresInDays < 0 || in.ExpiresInDays > 3650:
		e.Add("expires_in_days", "must be from 1 to 3650, or 0 for the longest lifetime allowed")
	case maxLife > 0 && life > maxLife:
		e.Add("expires_in_days", "must be at most %d: API tokens live at most %s on this server (--token-max-lifetime)", int(maxLife/(24*time.Hour)), maxLife)
	}
	if err := e.Err(); err != nil {
		return err
	}
	if life == 0 {
		life = maxLife
	}
	var exp *time.Time
	if life > 0 {
		t := time.Now().Add(life)
		exp = &t
	}
	var plain string
	var t store.APIToken
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		if err := s.checkQuota(c.ctx, tx, c.p.CompanyID, store.QuotaAPITokens); err != nil {
			return err
		}
		var err error
		if plain, t, err = tx.APITokenCreate(c.ctx, c.p.CompanyID, c.p.MemberID, in.Name, exp); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "created", store.AuditToken, t.ID, map[string]any{"name": t.Name})
	})
	if err != nil {
		return err
	}
	out := tokenOut(t)
	out.Token = plain
	return c.json(http.StatusCreated, out)
}

// revokeToken revokes one of the caller's tokens; the owner may revoke any member's.
func (s *Server) revokeToken(c *call) error {
	id, err := c.pathID("token")
	if err != nil {
		return err
	}
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		ts, err := tx.APITokenList(c.ctx, c.p.CompanyID)
		if err != nil {
			return err
		}
		found := false
		for _, t := range ts {
			found = found || (t.ID == id && (c.p.IsOwner || t.MemberID == c.p.MemberID))
		}
		if !found {
			return store.ErrNotFound
		}
		if err := tx.APITokenRevoke(c.ctx, c.p.CompanyID, id); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "revoked", store.AuditToken, id, nil)
	})
	return c.removed(err, notFound("token", id))
}

var auditTypes = []string{store.AuditWebhook, store.AuditOAuth, store.AuditRole, store.AuditMember, store.AuditToken, store.AuditCompany}

func (s *Server) listAudit(c *call) error {
	q := c.r.URL.Query()
	var f store.AuditFilter
	if v := q.Get("object_type"); v != "" {
		ok := false
		for _, t := range auditTypes {
			ok = ok || v == t
		}
		if !ok {
			return badRequest("object_type", "must be one of "+strings.Join(auditTypes, ", "))
		}
		f.ObjectType = &v
	}
	if v := q.Get("object_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return badRequest("object_id", "must be a positive integer")
		}
		f.ObjectID = &n
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	if v := q.Get("cursor"); v != "" {
		cur, err := decodeCursor(v, "audit", c.p.CompanyID)
		if err != nil {
			return badRequest("cursor", err.Error())
		}
		f.BeforeID = cur.ID
	}
	rows, err := s.store.AuditList(c.ctx, c.p.CompanyID, f)
	if err != nil {
		return err
	}
	page := listPage[store.AuditEntry]{Items: []store.AuditEntry{}}
	for i, a := range rows {
		if i == limit {
			next := encodeCursor(cursor{Kind: "audit", Company: c.p.CompanyID, ID: rows[i-1].ID})
			page.NextCursor = &next
			break
		}
		page.Items = append(page.Items, a)
	}
	return c.json(http.StatusOK, page)
}
