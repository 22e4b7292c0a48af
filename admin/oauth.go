package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// oauthInput is the body of OAuth create, update (PUT) and patch. Secrets (client_secret, code,
// refresh_token) are write-only: left out or sent as the mask they keep the stored value, an
// empty string clears it. A hidden extra parameter (webhook.KeyValue.Masked) sent with the mask
// as its value (or marked secret and left empty) keeps the value stored under the same key. A
// stored secret is kept only while token_url names the same destination
// (webhook.SameDestination); a request that changes it must give each stored secret again (or
// clear it).
type oauthInput struct {
	Name         string             `json:"name"`
	TokenURL     string             `json:"token_url"`
	Method       string             `json:"method"` // default POST
	GrantType    webhook.GrantType  `json:"grant_type"`
	ClientID     string             `json:"client_id"`
	ClientSecret *string            `json:"client_secret"`
	Code         *string            `json:"code"`
	RefreshToken *string            `json:"refresh_token"`
	Scope        string             `json:"scope"`
	ExtraParams  []webhook.KeyValue `json:"extra_params"`
}

func oauthInputOf(c webhook.OAuthCredential) oauthInput {
	return oauthInput{
		Name: c.Name, TokenURL: c.TokenURL, Method: c.Method, GrantType: c.GrantType, ClientID: c.ClientID,
		Scope: c.Scope, ExtraParams: webhook.MaskParams(c.ExtraParams),
	}
}

// apply sets c's fields from the input; kept names the stored secrets it left in place (nil or
// the mask given), so the caller can refuse them when the token URL changed. c holds the stored
// values (the zero credential for a new one).
func (in oauthInput) apply(c *webhook.OAuthCredential) (kept []string) {
	c.Name, c.TokenURL, c.GrantType, c.ClientID, c.Scope = in.Name, in.TokenURL, in.GrantType, in.ClientID, in.Scope
	c.Method = strings.ToUpper(in.Method)
	if c.Method == "" {
		c.Method = "POST"
	}
	for _, f := range []struct {
		name string
		in   *string
		dst  *string
	}{{"client_secret", in.ClientSecret, &c.ClientSecret}, {"code", in.Code, &c.Code}, {"refresh_token", in.RefreshToken, &c.RefreshToken}} {
		switch {
		case f.in != nil && *f.in != webhook.Mask:
			*f.dst = *f.in
		case *f.dst != "":
			kept = append(kept, f.name)
		}
	}
	old := c.ExtraParams
	c.ExtraParams = make([]webhook.KeyValue, len(in.ExtraParams))
	for i, p := range in.ExtraParams {
		if p.Value == webhook.Mask || (p.Secret && p.Value == "") {
			for _, o := range old {
				if o.Masked() && o.Key == p.Key {
					// A kept value stays hidden: unmarking it secret while keeping it would
					// answer the stored value.
					p.Value, p.Secret = o.Value, p.Secret || o.Secret
					kept = append(kept, fmt.Sprintf("extra_params[%d].value", i))
					break
				}
			}
		}
		c.ExtraParams[i] = p
	}
	return kept
}

// checkSecretParams reports hidden extra parameters left without a value: the mask, or a
// parameter marked secret left empty, with no stored value under the same key to keep.
func checkSecretParams(e *webhook.ValidationError, ps []webhook.KeyValue) {
	for i, p := range ps {
		if p.Value == webhook.Mask || (p.Secret && p.Value == "") {
			e.Add(fmt.Sprintf("extra_params[%d].value", i), "is required (a hidden parameter keeps its value only when one is stored under the same key)")
		}
	}
}

// checkTokenDestination refuses to carry the stored secrets (kept, from apply) over to a new
// token URL: each must be given again, or cleared with "".
func checkTokenDestination(oldURL, newURL string, kept []string) error {
	if len(kept) == 0 || webhook.SameDestination(oldURL, newURL) {
		return nil
	}
	e := &webhook.ValidationError{}
	for _, f := range kept {
		e.Add(f, newDestinationMsg, "token URL")
	}
	return e
}

// oauthJSON is a credential as the API returns it: secrets masked, with a flag saying whether one
// is stored.
type oauthJSON struct {
	ID              int64              `json:"id"`
	Name            string             `json:"name"`
	TokenURL        string             `json:"token_url"`
	Method          string             `json:"method"`
	GrantType       webhook.GrantType  `json:"grant_type"`
	ClientID        string             `json:"client_id"`
	ClientSecret    string             `json:"client_secret"`
	ClientSecretSet bool               `json:"client_secret_set"`
	Code            string             `json:"code"`
	CodeSet         bool               `json:"code_set"`
	RefreshToken    string             `json:"refresh_token"`
	RefreshTokenSet bool               `json:"refresh_token_set"`
	Scope           string             `json:"scope"`
	ExtraParams     []webhook.KeyValue `json:"extra_params"`
	CreatedBy       *int64             `json:"created_by"`
	UpdatedBy       *int64             `json:"updated_by"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`

	// SecretError: see webhookJSON.
	SecretError string `json:"secret_error,omitempty"`
}

func masked(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	return webhook.Mask, true
}

func oauthOut(c webhook.OAuthCredential) oauthJSON {
	out := oauthJSON{
		ID: c.ID, Name: c.Name, TokenURL: c.TokenURL, Method: c.Method, GrantType: c.GrantType,
		ClientID: c.ClientID, Scope: c.Scope, ExtraParams: webhook.MaskParams(c.ExtraParams),
		CreatedBy: c.CreatedBy, UpdatedBy: c.UpdatedBy, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		SecretError: c.SealError,
	}
	out.ClientSecret, out.ClientSecretSet = masked(c.ClientSecret)
	out.Code, out.CodeSet = masked(c.Code)
	out.RefreshToken, out.RefreshTokenSet = masked(c.RefreshToken)
	return out
}

func (s *Server) oauthRules() webhook.Rules { return webhook.Rules{AllowIP: s.allowIP} }

// validateOAuth checks a credential about to be stored: its fields (webhook.OAuthCredential.
// Validate), and no hidden extra parameter left as the mask (checkSecretParams).
func (s *Server) validateOAuth(cr webhook.OAuthCredential) error {
	err := cr.Validate(s.oauthRules())
	var ve *webhook.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return err
	}
	if ve == nil {
		ve = &webhook.ValidationError{}
	}
	checkSecretParams(ve, cr.ExtraParams)
	return ve.Err()
}

func (s *Server) listOAuth(c *call) error {
	cs, err := s.store.OAuthCredentialList(c.ctx, c.p.CompanyID)
	if err != nil {
		return err
	}
	page := listPage[oauthJSON]{Items: make([]oauthJSON, len(cs))}
	for i, cr := range cs {
		page.Items[i] = oauthOut(cr)
	}
	return c.json(http.StatusOK, page)
}

func (s *Server) getOAuth(c *call) error {
	id, err := c.pathID("OAuth credential")
	if err != nil {
		return err
	}
	cr, err := s.store.OAuthCredentialGet(c.ctx, c.p.CompanyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("OAuth credential", id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, oauthOut(cr))
}

func (s *Server) createOAuth(c *call) error {
	var in oauthInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	cr := webhook.OAuthCredential{CompanyID: c.p.CompanyID}
	in.apply(&cr)
	if err := s.validateOAuth(cr); err != nil {
		return err
	}
	var out webhook.OAuthCredential
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		if err := s.checkQuota(c.ctx, tx, c.p.CompanyID, store.QuotaOAuthCredentials); err != nil {
			return err
		}
		var err error
		if out, err = tx.OAuthCredentialCreate(c.ctx, cr, &c.p.MemberID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "created", store.AuditOAuth, out.ID, map[string]any{"name": out.Name})
	})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", fmt.Sprintf("/v1/oauth/%d", out.ID))
	return c.json(http.StatusCreated, oauthOut(out))
}

func (s *Server) putOAuth(c *call) error   { return s.updateOAuth(c, false) }
func (s *Server) patchOAuth(c *call) error { return s.updateOAuth(c, true) }

func (s *Server) updateOAuth(c *call, patch bool) error {
	id, err := c.pathID("OAuth credential")
	if err != nil {
		return err
	}
	old, err := s.store.OAuthCredentialGet(c.ctx, c.p.CompanyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("OAuth credential", id)
	}
	if err != nil {
		return err
	}
	var in oauthInput
	if patch {
		in = oauthInputOf(old)
	}
	if err := c.decode(&in, false); err != nil {
		return err
	}
	cr := old
	kept := in.apply(&cr)
	if err := checkTokenDestination(old.TokenURL, cr.TokenURL, kept); err != nil {
		return err
	}
	if err := s.validateOAuth(cr); err != nil {
		return err
	}
	var out webhook.OAuthCredential
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if out, err = tx.OAuthCredentialUpdate(c.ctx, cr, &c.p.MemberID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "updated", store.AuditOAuth, id, map[string]any{"name": out.Name})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("OAuth credential", id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, oauthOut(out))
}

func (s *Server) deleteOAuth(c *call) error {
	id, err := c.pathID("OAuth credential")
	if err != nil {
		return err
	}
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		cr, err := tx.OAuthCredentialGet(c.ctx, c.p.CompanyID, id)
		if err != nil {
			return err
		}
		users, err := tx.WebhooksUsingOAuth(c.ctx, c.p.CompanyID, id)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			names := make([]string, len(users))
			for i, u := range users {
				names[i] = fmt.Sprintf("%q (id %d)", u.Name, u.ID)
			}
			return &problem{Status: http.StatusConflict, Webhooks: users,
				Detail: "the OAuth credential is used by webhooks " + strings.Join(names, ", ") + "; detach it from them first"}
		}
		if err := tx.OAuthCredentialDelete(c.ctx, c.p.CompanyID, id); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "deleted", store.AuditOAuth, id, map[string]any{"name": cr.Name})
	})
	return c.removed(err, notFound("OAuth credential", id))
}
