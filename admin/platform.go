package admin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// The platform API (/v1/platform) is the host application's own: with a platform token (whp_…)
// it creates and disables companies, adds and removes their members and roles, and mints portal
// links that sign a member in to the web page. A platform token reaches nothing else — no
// webhook, credential, history or secret — and a company token cannot reach it (authorize).
//
// A company's id is the host application's own company id, the value of the tenant column: the
// API answers it as both id and external_id, and it names the company in every path.

// ownerRole is the built-in role every company has: its members are owners (every permission,
// and the company's roles and member roles). It is not a row of walhook.role; member.is_owner
// holds it.
const ownerRole = "owner"

// defaultPortalLinkTTL is how long a portal link's code stays valid unless configured.
const defaultPortalLinkTTL = 5 * time.Minute

// maxCompanyText bounds a company's id and name, as the database does.
const maxCompanyText = 200

type companyJSON struct {
	ID         string     `json:"id"`
	ExternalID string     `json:"external_id"`
	Name       string     `json:"name"`
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

func companyOut(c store.Company) companyJSON {
	return companyJSON{ID: c.ID, ExternalID: c.ID, Name: c.Name, Disabled: c.DisabledAt != nil, DisabledAt: c.DisabledAt, CreatedAt: c.CreatedAt}
}

type platformMemberJSON struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      *string   `json:"role"`
	IsOwner   bool      `json:"is_owner"`
	CreatedAt time.Time `json:"created_at"`
}

type platformRoleJSON struct {
	Name        string               `json:"name"`
	Permissions []webhook.Permission `json:"permissions"`
	Builtin     bool                 `json:"builtin"`
}

type portalLinkJSON struct {
	URL       string    `json:"url"`
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

// validateExternalID checks a host application's company id: it is compared byte for byte with
// the tenant column, so surrounding spaces (a likely copy-paste accident) are refused rather than
// trimmed.
func validateExternalID(e *webhook.ValidationError, v string) {
	if webhook.ValidateText(e, "external_id", v, maxCompanyText) && strings.TrimSpace(v) != v {
		e.Add("external_id", "must not start or end with spaces")
	}
}

// validateEmail checks a member's email loosely: walhook sends no mail, the host application
// owns its users; the address only has to be one line that looks like one.
func validateEmail(e *webhook.ValidationError, v string) {
	if webhook.ValidateText(e, "email", v, 320) {
		at := strings.LastIndexByte(v, '@')
		if at < 1 || at == len(v)-1 || strings.ContainsFunc(v, unicode.IsSpace) || len(v) < 3 {
			e.Add("email", "must be an email address (name@domain)")
		}
	}
}

// pathCompany loads the company named by the {id} path value.
func (s *Server) pathCompany(c *call) (store.Company, error) {
	id := c.r.PathValue("id")
	co, err := s.store.CompanyGet(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && id == "") {
		return store.Company{}, &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("company %q not found", id)}
	}
	return co, err
}

// inCompany is a platform route under /v1/platform/companies/{id}: h runs with the company the
// path names (404 when there is none).
func (s *Server) inCompany(h func(c *call, co store.Company) error) handler {
	return func(c *call) error {
		co, err := s.pathCompany(c)
		if err != nil {
			return err
		}
		return h(c, co)
	}
}

// pathMember loads the member of co named by the {member_id} path value.
func (s *Server) pathMember(c *call, co store.Company) (store.Member, error) {
	raw := c.r.PathValue("member_id")
	id, err := parsePositive(raw)
	if err != nil {
		return store.Member{}, &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("member %q not found", raw)}
	}
	m, err := s.store.MemberGet(c.ctx, co.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Member{}, notFound("member", id)
	}
	return m, err
}

func (s *Server) platformListCompanies(c *call) error {
	q := c.r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	after := ""
	if v := q.Get("cursor"); v != "" {
		cur, err := decodeCursor(v, "companies", "")
		if err != nil {
			return badRequest("cursor", err.Error())
		}
		after = cur.Name
	}
	rows, err := s.store.CompanyListAfter(c.ctx, after, limit+1)
	if err != nil {
		return err
	}
	page := listPage[companyJSON]{Items: []companyJSON{}}
	for i, co := range rows {
		if i == limit {
			// ID 1 only satisfies the cursor's shape check; the position is the company id.
			next := encodeCursor(cursor{Kind: "companies", Name: rows[i-1].ID, ID: 1})
			page.NextCursor = &next
			break
		}
		page.Items = append(page.Items, companyOut(co))
	}
	return c.json(http.StatusOK, page)
}

// companyInput is the body of POST /v1/platform/companies.
type companyInput struct {
	Name       string `json:"name"`
	ExternalID string `json:"external_id"`
}

func (in companyInput) validate() error {
	e := &webhook.ValidationError{}
	webhook.ValidateText(e, "name", in.Name, maxCompanyText)
	validateExternalID(e, in.ExternalID)
	return e.Err()
}

// memberInput is the body of POST /v1/platform/companies/{id}/members.
type memberInput struct {
	Email string  `json:"email"`
	Name  string  `json:"name"`
	Role  *string `json:"role"`
}

func (in memberInput) validate() error {
	e := &webhook.ValidationError{}
	validateEmail(e, in.Email)
	if in.Name != "" {
		webhook.ValidateText(e, "name", in.Name, maxCompanyText)
	}
	if in.Role != nil && *in.Role == "" {
		e.Add("role", "must be owner, a role of the company, or null for no role")
	}
	return e.Err()
}

// decodeValid decodes a platform create's required body into in and checks it: a
// *webhook.ValidationError answers 422 naming each field.
func (c *call) decodeValid(in interface{ validate() error }) error {
	if err := c.decode(in, false); err != nil {
		return err
	}
	return in.validate()
}

// conflictOn answers a unique violation of a create with 409 naming the field that collided,
// with detail for a person; any other error passes as it is.
func conflictOn(err error, field, message, detail string) error {
	var ce *store.ConstraintError
	if errors.As(err, &ce) && errors.Is(err, store.ErrConflict) {
		return &problem{Status: http.StatusConflict, Detail: detail, Errors: []webhook.FieldError{{Field: field, Message: message}}}
	}
	return err
}

func (s *Server) platformCreateCompany(c *call) error {
	var in companyInput
	if err := c.decodeValid(&in); err != nil {
		return err
	}
	var co store.Company
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if co, err = tx.CompanyCreate(c.ctx, in.ExternalID, in.Name); err != nil {
			return conflictOn(err, "external_id", "another company has this id", fmt.Sprintf("a company with external_id %q exists", in.ExternalID))
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "created", store.AuditCompany, 0, map[string]any{"name": co.Name})
	})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", "/v1/platform/companies/"+url.PathEscape(co.ID))
	return c.json(http.StatusCreated, companyOut(co))
}

func (s *Server) platformGetCompany(c *call, co store.Company) error {
	return c.json(http.StatusOK, companyOut(co))
}

func (s *Server) platformRenameCompany(c *call, co store.Company) error {
	var in struct {
		Name *string `json:"name"`
	}
	if err := c.decode(&in, false); err != nil {
		return err
	}
	e := &webhook.ValidationError{}
	if in.Name == nil {
		e.Add("name", "is required")
	} else {
		webhook.ValidateText(e, "name", *in.Name, maxCompanyText)
	}
	if err := e.Err(); err != nil {
		return err
	}
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		old := co.Name
		var err error
		if co, err = tx.CompanyRename(c.ctx, co.ID, *in.Name); err != nil {
			return err
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "renamed", store.AuditCompany, 0, map[string]any{"from": old, "to": co.Name})
	})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, companyOut(co))
}

func (s *Server) platformDisableCompany(c *call, co store.Company) error {
	return s.platformSetDisabled(c, co, true)
}

func (s *Server) platformEnableCompany(c *call, co store.Company) error {
	return s.platformSetDisabled(c, co, false)
}

func (s *Server) platformSetDisabled(c *call, co store.Company, disabled bool) error {
	if (co.DisabledAt != nil) == disabled {
		return c.json(http.StatusOK, companyOut(co))
	}
	action := map[bool]string{true: "disabled", false: "enabled"}[disabled]
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if co, err = tx.CompanySetDisabled(c.ctx, co.ID, disabled); err != nil {
			return err
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, action, store.AuditCompany, 0, nil)
	})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, companyOut(co))
}

func (s *Server) platformMemberOut(m store.Member, roles map[int64]string) platformMemberJSON {
	out := platformMemberJSON{ID: m.ID, Email: m.Email, Name: m.Name, IsOwner: m.IsOwner, CreatedAt: m.CreatedAt}
	if m.IsOwner {
		r := ownerRole
		out.Role = &r
	} else if m.RoleID != nil {
		if r, ok := roles[*m.RoleID]; ok {
			out.Role = &r
		}
	}
	return out
}

// roleNames maps a company's role ids to their names.
func (s *Server) roleNames(c *call, companyID string) (map[int64]string, error) {
	roles, err := s.store.RoleList(c.ctx, companyID)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(roles))
	for _, r := range roles {
		out[r.ID] = r.Name
	}
	return out, nil
}

func (s *Server) platformListMembers(c *call, co store.Company) error {
	ms, err := s.store.MemberList(c.ctx, co.ID)
	if err != nil {
		return err
	}
	names, err := s.roleNames(c, co.ID)
	if err != nil {
		return err
	}
	page := listPage[platformMemberJSON]{Items: make([]platformMemberJSON, len(ms))}
	for i, m := range ms {
		page.Items[i] = s.platformMemberOut(m, names)
	}
	return c.json(http.StatusOK, page)
}

func (s *Server) platformCreateMember(c *call, co store.Company) error {
	var in memberInput
	if err := c.decodeValid(&in); err != nil {
		return err
	}
	var out store.Member
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		m := store.Member{CompanyID: co.ID, Email: in.Email, Name: in.Name}
		switch {
		case in.Role == nil:
		case *in.Role == ownerRole:
			m.IsOwner = true
		default:
			r, err := tx.RoleGetByName(c.ctx, co.ID, *in.Role)
			if errors.Is(err, store.ErrNotFound) {
				return invalid("role", fmt.Sprintf("company %q has no role %q (it has owner and the roles POST …/roles created)", co.ID, *in.Role))
			}
			if err != nil {
				return err
			}
			m.RoleID = &r.ID
		}
		var err error
		if out, err = tx.MemberCreate(c.ctx, m); err != nil {
			return conflictOn(err, "email", "another member of the company has this email", fmt.Sprintf("company %q already has a member %q", co.ID, in.Email))
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "created", store.AuditMember, out.ID, map[string]any{"email": out.Email, "role": in.Role})
	})
	if err != nil {
		return err
	}
	names, err := s.roleNames(c, co.ID)
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", fmt.Sprintf("/v1/platform/companies/%s/members/%d", url.PathEscape(co.ID), out.ID))
	return c.json(http.StatusCreated, s.platformMemberOut(out, names))
}

func (s *Server) platformRemoveMember(c *call, co store.Company) error {
	m, err := s.pathMember(c, co)
	if err != nil {
		return err
	}
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		if err := tx.MemberDelete(c.ctx, co.ID, m.ID); err != nil {
			return err
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "deleted", store.AuditMember, m.ID, map[string]any{"email": m.Email})
	})
	return c.removed(err, notFound("member", m.ID))
}

func (s *Server) platformListRoles(c *call, co store.Company) error {
	roles, err := s.store.RoleList(c.ctx, co.ID)
	if err != nil {
		return err
	}
	page := listPage[platformRoleJSON]{Items: []platformRoleJSON{{Name: ownerRole, Permissions: allPermissions, Builtin: true}}}
	for _, r := range roles {
		page.Items = append(page.Items, platformRoleJSON{Name: r.Name, Permissions: r.Permissions})
	}
	return c.json(http.StatusOK, page)
}

func (s *Server) platformCreateRole(c *call, co store.Company) error {
	in, err := decodeRole(c)
	if err != nil {
		return err
	}
	out, err := s.roleCreate(c, co.ID, in, func(tx *store.Store, r store.Role, details map[string]any) error {
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "created", store.AuditRole, r.ID, details)
	})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, platformRoleJSON{Name: out.Name, Permissions: out.Permissions})
}

func (s *Server) platformRemoveRole(c *call, co store.Company) error {
	name := c.r.PathValue("name")
	if name == ownerRole {
		return &problem{Status: http.StatusConflict, Detail: "owner is the built-in role of every company and cannot be removed"}
	}
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		r, err := tx.RoleGetByName(c.ctx, co.ID, name)
		if err != nil {
			return err
		}
		if err := tx.RoleDelete(c.ctx, co.ID, r.ID); err != nil {
			return err
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "deleted", store.AuditRole, r.ID, map[string]any{"name": r.Name})
	})
	return c.removed(err, &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("role %q not found", name)})
}

// platformCreatePortalLink mints a one-time sign-in code for a member, as `walhook dev` does for
// its owner, but short-lived (PortalLinkTTL), and answers it with the link that spends it.
func (s *Server) platformCreatePortalLink(c *call, co store.Company) error {
	m, err := s.pathMember(c, co)
	if err != nil {
		return err
	}
	disabled := &problem{Status: http.StatusConflict, Detail: fmt.Sprintf("company %q is disabled; enable it before signing its members in", co.ID)}
	if co.DisabledAt != nil {
		return disabled
	}
	ttl := s.cfg.PortalLinkTTL
	exp := time.Now().Add(ttl) // the store stamps the code a moment later: it never expires before exp
	var code string
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if code, err = tx.LoginCodeCreate(c.ctx, co.ID, m.ID, ttl); err != nil {
			return err
		}
		return tx.AuditRecordPlatform(c.ctx, co.ID, c.pp, "portal_link_created", store.AuditMember, m.ID, map[string]any{"ttl_seconds": int(ttl.Seconds())})
	})
	if errors.Is(err, store.ErrCompanyDisabled) {
		return disabled // disabled since it was read
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, portalLinkJSON{URL: s.publicURL() + "/#login=" + code, Code: code, ExpiresAt: exp})
}

// publicURL is where browsers reach the web page: the configured PublicURL, else http:// and the
// address the server listens on (a wildcard host read as localhost).
func (s *Server) publicURL() string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	addr := s.cfg.Addr
	if a := s.boundAddr.Load(); a != nil {
		addr = *a
	}
	return "http://" + browsableAddr(addr)
}

// browsableAddr turns a listen address into one a browser can open: a wildcard or empty host
// (":8080", "0.0.0.0:8080", "[::]:8080") becomes localhost.
func browsableAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// parsePositive parses a positive decimal id as the paths carry it.
func parsePositive(raw string) (int64, error) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 || raw == "" || raw[0] == '+' {
		return 0, errors.New("not a positive id")
	}
	return id, nil
}
