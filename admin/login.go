package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// webSessionTTL is how long the API token a sign-in code is exchanged for stays valid.
const webSessionTTL = 12 * time.Hour

type loginInput struct {
	Code string `json:"code"`
}

type loginOutput struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// login exchanges a one-time sign-in code (printed by `walhook dev` as a link) for an API token
// of the same member that expires after webSessionTTL. It needs no token: the code is the
// credential, 256 random bits, stored hashed and spent on first use. Failed codes count towards
// the address's hold-off (throttle.go).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	c := &call{w: w, r: r, ctx: r.Context()}
	client := s.throttle.client(r)
	if d := s.throttle.wait(client); d > 0 {
		s.writeError(w, r, heldOff(w, d))
		return
	}
	var in loginInput
	if err := c.decode(&in, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, info, err := s.store.LoginCodeRedeem(c.ctx, in.Code, webSessionTTL)
	if errors.Is(err, store.ErrNotFound) {
		s.failAuth(r, client)
		s.writeError(w, r, &problem{Status: http.StatusUnauthorized, Detail: "this sign-in link was already used or has expired; ask for a new one (walhook dev prints one at every start) or sign in with an API token"})
		return
	}
	if errors.Is(err, store.ErrCompanyDisabled) {
		s.writeError(w, r, &problem{Status: http.StatusForbidden, Detail: "your company is disabled; its members cannot sign in until it is enabled again"})
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_ = c.json(http.StatusOK, loginOutput{Token: token, ExpiresAt: *info.ExpiresAt})
}

// logout revokes the token the request is made with (the web page's sign-out), so it answers 401
// from then on even if a copy of it survives in the browser, a log or a proxy.
func (s *Server) logout(c *call) error {
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		if err := tx.APITokenRevoke(c.ctx, c.p.CompanyID, c.p.TokenID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "revoked", store.AuditToken, c.p.TokenID, map[string]any{"reason": "sign-out"})
	})
	if err != nil {
		return err
	}
	return c.noContent()
}
