package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// maxBody bounds a request body; a larger one answers 413.
const maxBody = 1 << 20

// access is who may call a route.
type access int

const (
	accessMember   access = iota // any member of the company
	accessManage                 // members holding manage_webhooks (the owner always does)
	accessOwner                  // the company owner only
	accessPlatform               // platform tokens only (the host application; platform.go)
)

// call is one authenticated API request.
type call struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	p   store.Principal
	// pp is the platform token's principal on a platform route (p is then empty).
	pp store.PlatformPrincipal
}

// handler serves an authenticated request; a returned error is answered as problem details.
type handler func(c *call) error

// route is one API operation. The table of routes is the router and is compared with the
// OpenAPI document in tests.
type route struct {
	method, path string
	access       access
	h            handler
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/v1/me", accessMember, s.getMe},
		{"GET", "/v1/events", accessMember, s.listEvents},
		{"GET", "/v1/events/fields", accessMember, s.eventFields},

		{"GET", "/v1/webhooks", accessMember, s.listWebhooks},
		{"POST", "/v1/webhooks", accessManage, s.createWebhook},
		{"POST", "/v1/webhooks/test", accessManage, s.testUnsaved},
		{"GET", "/v1/webhooks/{id}", accessMember, s.getWebhook},
		{"PUT", "/v1/webhooks/{id}", accessManage, s.putWebhook},
		{"PATCH", "/v1/webhooks/{id}", accessManage, s.patchWebhook},
		{"DELETE", "/v1/webhooks/{id}", accessManage, s.deleteWebhook},
		{"POST", "/v1/webhooks/{id}/duplicate", accessManage, s.duplicateWebhook},
		{"POST", "/v1/webhooks/{id}/test", accessManage, s.testSaved},
		{"POST", "/v1/webhooks/{id}/rotate-secret", accessManage, s.rotateSecret},
		{"GET", "/v1/webhooks/{id}/deliveries", accessMember, s.listDeliveries},
		{"POST", "/v1/webhooks/{id}/deliveries/resync", accessManage, s.resyncFailed},
		{"POST", "/v1/webhooks/{id}/replay/preview", accessManage, s.previewReplay},
		{"POST", "/v1/webhooks/{id}/replay", accessManage, s.replay},
		{"GET", "/v1/webhooks/{id}/stats", accessMember, s.webhookStats},
		{"GET", "/v1/deliveries/{id}", accessMember, s.getDelivery},
		{"POST", "/v1/deliveries/{id}/resync", accessManage, s.resyncDelivery},

		{"GET", "/v1/oauth", accessMember, s.listOAuth},
		{"POST", "/v1/oauth", accessManage, s.createOAuth},
		{"GET", "/v1/oauth/{id}", accessMember, s.getOAuth},
		{"PUT", "/v1/oauth/{id}", accessManage, s.putOAuth},
		{"PATCH", "/v1/oauth/{id}", accessManage, s.patchOAuth},
		{"DELETE", "/v1/oauth/{id}", accessManage, s.deleteOAuth},

		{"GET", "/v1/roles", accessOwner, s.listRoles},
		{"POST", "/v1/roles", accessOwner, s.createRole},
		{"PUT", "/v1/roles/{id}/permissions", accessOwner, s.setRolePermissions},
		{"GET", "/v1/members", accessMember, s.listMembers},
		{"PATCH", "/v1/members/{id}", accessOwner, s.patchMember},
		{"GET", "/v1/tokens", accessMember, s.listTokens},
		{"POST", "/v1/tokens", accessMember, s.createToken},
		{"DELETE", "/v1/tokens/{id}", accessMember, s.revokeToken},
		{"POST", "/v1/logout", accessMember, s.logout},
		{"GET", "/v1/audit", accessMember, s.listAudit},

		{"GET", "/v1/platform/companies", accessPlatform, s.platformListCompanies},
		{"POST", "/v1/platform/companies", accessPlatform, s.platformCreateCompany},
		{"GET", "/v1/platform/companies/{id}", accessPlatform, s.inCompany(s.platformGetCompany)},
		{"PATCH", "/v1/platform/companies/{id}", accessPlatform, s.inCompany(s.platformRenameCompany)},
		{"POST", "/v1/platform/companies/{id}/disable", accessPlatform, s.inCompany(s.platformDisableCompany)},
		{"POST", "/v1/platform/companies/{id}/enable", accessPlatform, s.inCompany(s.platformEnableCompany)},
		{"GET", "/v1/platform/companies/{id}/members", accessPlatform, s.inCompany(s.platformListMembers)},
		{"POST", "/v1/platform/companies/{id}/members", accessPlatform, s.inCompany(s.platformCreateMember)},
		{"DELETE", "/v1/platform/companies/{id}/members/{member_id}", accessPlatform, s.inCompany(s.platformRemoveMember)},
		{"POST", "/v1/platform/companies/{id}/members/{member_id}/portal-links", accessPlatform, s.inCompany(s.platformCreatePortalLink)},
		{"GET", "/v1/platform/companies/{id}/roles", accessPlatform, s.inCompany(s.platformListRoles)},
		{"POST", "/v1/platform/companies/{id}/roles", accessPlatform, s.inCompany(s.platformCreateRole)},
		{"DELETE", "/v1/platform/companies/{id}/roles/{name}", accessPlatform, s.inCompany(s.platformRemoveRole)},
	}
}

// serve wraps a route with authentication, the permission check and error mapping.
func (s *Server) serve(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c := &call{w: w, r: r, ctx: r.Context()}
		err := s.authorize(c, rt.access)
		if err == nil {
			err = checkQuery(r.URL.RawQuery)
		}
		if err == nil {
			err = rt.h(c)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) authorize(c *call, a access) error {
	auth := c.r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return &problem{Status: http.StatusUnauthorized, Detail: "send an API token: Authorization: Bearer <token>"}
	}
	client := s.throttle.client(c.r)
	if d := s.throttle.wait(client); d > 0 {
		return heldOff(c.w, d)
	}
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, crypt.PlatformTokenPrefix) {
		return s.authorizePlatform(c, a, token, client)
	}
	p, err := s.store.Authenticate(c.ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		s.failAuth(c.r, client)
		return &problem{Status: http.StatusUnauthorized, Detail: "the API token is unknown, revoked or expired"}
	}
	if err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	c.p = p
	switch {
	case a == accessPlatform:
		return &problem{Status: http.StatusForbidden, Detail: "the platform API needs a platform token (walhook token create --platform); a company member's token cannot call it"}
	case p.CompanyDisabled:
		return &problem{Status: http.StatusForbidden, Detail: "your company is disabled; its members cannot use walhook until it is enabled again"}
	case a == accessManage && !p.Can(webhook.PermManageWebhooks):
		return &problem{Status: http.StatusForbidden, Detail: "this needs the Manage Webhooks permission (manage_webhooks); ask the company owner to grant it to your role"}
	case a == accessOwner && !p.IsOwner:
		return &problem{Status: http.StatusForbidden, Detail: "only the company owner may manage roles, permissions and member roles"}
	}
	return nil
}

// authorizePlatform checks a platform token (whp_…): it may call the platform routes and nothing
// else, so it can never read a company's webhooks, credentials, history or secrets.
func (s *Server) authorizePlatform(c *call, a access, token string, client netip.Prefix) error {
	pp, err := s.store.PlatformAuthenticate(c.ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		s.failAuth(c.r, client)
		return &problem{Status: http.StatusUnauthorized, Detail: "the platform token is unknown, revoked or expired"}
	}
	if err != nil {
		return fmt.Errorf("authenticate platform token: %w", err)
	}
	if a != accessPlatform {
		return &problem{Status: http.StatusForbidden, Detail: "a platform token can only call /v1/platform; sign a member in with a portal link to act in a company"}
	}
	c.pp = pp
	return nil
}

// checkQuery refuses a query string that does not parse or names a parameter twice: handlers read
// the first value only, and a proxy or log may read the last.
func checkQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return &problem{Status: http.StatusBadRequest, Detail: "the query string is malformed: " + err.Error()}
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return badRequest(k, "must be given once")
		}
	}
	return nil
}

// problem is an RFC 9457 problem detail.
type problem struct {
	Type     string               `json:"type"`
	Title    string               `json:"title"`
	Status   int                  `json:"status"`
	Detail   string               `json:"detail,omitempty"`
	Instance string               `json:"instance,omitempty"`
	Errors   []webhook.FieldError `json:"errors,omitempty"`
	// Webhooks names the webhooks that block deleting an OAuth credential.
	Webhooks []store.WebhookRef `json:"webhooks,omitempty"`
	// Limit names the quota a request went past (quota.go) and Max is its value.
	Limit string `json:"limit,omitempty"`
	Max   int    `json:"max,omitempty"`
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s", p.Status, p.Detail) }

func notFound(what string, id int64) *problem {
	return &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %d not found", what, id)}
}

func invalid(field, msg string) *problem {
	return &problem{Status: http.StatusUnprocessableEntity, Detail: "the request has invalid fields",
		Errors: []webhook.FieldError{{Field: field, Message: msg}}}
}

func badRequest(field, msg string) *problem {
	return &problem{Status: http.StatusBadRequest, Detail: "the request is malformed",
		Errors: []webhook.FieldError{{Field: field, Message: msg}}}
}

// constraintFields names the field a database constraint guards.
var constraintFields = map[string]webhook.FieldError{
	"oauth_credential_company_id_name_key": {Field: "name", Message: "another OAuth credential has this name"},
	"role_company_id_name_key":             {Field: "name", Message: "another role has this name"},
	"webhook_event_keys_fkey":              {Field: "events", Message: "unknown trigger event"},
}

// writeError answers err as problem details: the store's errors are classified here, once.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	var ve *webhook.ValidationError
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &ve):
		p = &problem{Status: http.StatusUnprocessableEntity, Detail: "the request has invalid fields", Errors: ve.Fields}
	case errors.Is(err, store.ErrNotFound):
		p = &problem{Status: http.StatusNotFound, Detail: "not found"}
	case errors.Is(err, store.ErrBusy):
		p = &problem{Status: http.StatusConflict, Detail: "the delivery is being sent right now; try again when the attempt ends"}
	case errors.As(err, &ce):
		status := http.StatusConflict
		if errors.Is(ce.Kind, store.ErrInvalid) {
			status = http.StatusUnprocessableEntity
		}
		p = &problem{Status: status, Detail: "the request conflicts with the stored data"}
		if fe, ok := constraintFields[ce.Constraint]; ok {
			p.Errors = []webhook.FieldError{fe}
		}
	default:
		if r.Context().Err() == nil {
			s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("admin request failed")
		}
		p = &problem{Status: http.StatusInternalServerError, Detail: "internal error; the server log has details"}
	}
	if p.Type == "" {
		p.Type = "about:blank"
		if len(p.Errors) > 0 && p.Status == http.StatusUnprocessableEntity {
			p.Type = "urn:walhook:problem:validation"
		}
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = r.URL.Path
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="walhook"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// json writes v as the response.
func (c *call) json(status int, v any) error {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	return json.NewEncoder(c.w).Encode(v)
}

func (c *call) noContent() error {
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// removed answers a removal that returned err: missing when what it removes was not found, no
// content when it went through.
func (c *call) removed(err error, missing *problem) error {
	if errors.Is(err, store.ErrNotFound) {
		return missing
	}
	if err != nil {
		return err
	}
	return c.noContent()
}

// pathID parses the {id} path value; a malformed id is simply not found.
func (c *call) pathID(what string) (int64, error) {
	raw := c.r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 || raw[0] == '+' {
		return 0, &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q not found", what, raw)}
	}
	return id, nil
}

// decode reads a JSON body into v: at most 1 MiB (413), application/json (415), no unknown
// fields and nothing after the value (400). An empty body leaves v as it is when optional.
func (c *call) decode(v any, optional bool) error {
	return decodeJSON(c.w, c.r, v, optional)
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body is larger than %d bytes", maxBody)}
		}
		return &problem{Status: http.StatusBadRequest, Detail: "could not read the body"}
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		if optional {
			return nil
		}
		return &problem{Status: http.StatusBadRequest, Detail: "a JSON body is required"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || !optional {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &problem{Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"}
		}
	}
	return decodeBytes(raw, v)
}

// decodeBytes decodes one JSON object strictly; errors are 400 problems naming the field. The body
// must be UTF-8 (encoding/json would turn invalid bytes into U+FFFD silently) and no object may
// name a key twice (encoding/json keeps the last, case-insensitively; another reader may keep the
// first).
func decodeBytes(raw []byte, v any) error {
	if !utf8.Valid(raw) {
		return badRequest("", "the body must be UTF-8")
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] != '{' {
		return badRequest("", "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return badRequest("", fmt.Sprintf("malformed JSON at byte %d", se.Offset))
		case errors.As(err, &te):
			f := te.Field
			if f == "" {
				f = "(body)"
			}
			return badRequest(f, fmt.Sprintf("must be a %s, not a JSON %s", jsonTypeName(te.Type.Kind().String()), te.Value))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(name, "unknown field")
		default:
			return badRequest("", "malformed JSON: "+err.Error())
		}
	}
	if dec.More() {
		return badRequest("", "the body must hold one JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return badRequest("", "the body must hold one JSON value")
	}
	if field, err := duplicateKey(json.NewDecoder(bytes.NewReader(raw)), ""); err != nil {
		return badRequest("", "malformed JSON: "+err.Error())
	} else if field != "" {
		return badRequest(field, "is given twice")
	}
	return nil
}

// duplicateKey walks one JSON value and returns the path of the first key an object repeats,
// compared as encoding/json matches field names (case-insensitively), or "".
func duplicateKey(dec *json.Decoder, path string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", err
			}
			k, _ := kt.(string)
			p := k
			if path != "" {
				p = path + "." + k
			}
			fold := strings.ToLower(strings.ToUpper(k))
			if seen[fold] {
				return p, nil
			}
			seen[fold] = true
			if d, err := duplicateKey(dec, p); d != "" || err != nil {
				return d, err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if d, err := duplicateKey(dec, fmt.Sprintf("%s[%d]", path, i)); d != "" || err != nil {
				return d, err
			}
		}
	default:
		return "", nil
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "float64":
		return "number"
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	case "bool":
		return "boolean"
	}
	return kind
}
