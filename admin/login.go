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
// credential, 256 random bits, stored hashed and spent on first use.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	c := &call{w: w, r: r, ctx: r.Context()}
	var in loginInput
	if err := c.decode(&in, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, info, err := s.store.LoginCodeRedeem(c.ctx, in.Code, webSessionTTL)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, &problem{Status: http.StatusUnauthorized, Detail: "this sign-in link was already used or has expired; ask for a new one (walhook dev prints one at every start) or sign in with an API token"})
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_ = c.json(http.StatusOK, loginOutput{Token: token, ExpiresAt: *info.ExpiresAt})
}
