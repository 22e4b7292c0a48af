// Package oauth obtains the bearer tokens webhooks send in their Authorization header, from the
// OAuth credentials companies configure.
//
// A Source fetches a token from the credential's token URL with its method (POST form body, or
// GET query) and parameters, for the grants authorization_code (the stored code), client_credentials
// and refresh_token. A token is cached in memory until Skew before it expires, and saved (sealed)
// on the credential so other replicas and the next start reuse it; a refresh token issued by the
// server is kept and used for the next fetch, since an authorization code can be exchanged only
// once. Concurrent deliveries that need a token for the same credential share one fetch. When an
// endpoint answers 401, the dispatcher calls Invalidate with the token it used and asks again:
// only the first such caller refetches.
//
// golang.org/x/oauth2 is not used: it cannot send a token request with GET, the product allows
// any extra parameter in the request, and walhook needs the refresh token persisted and the
// request dialled through the SSRF guard — the token protocol itself is a form post and a JSON
// answer.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// Config configures a Source.
type Config struct {
	// Timeout bounds one token request. Default 15s.
	Timeout time.Duration
	// Skew: a cached token is renewed this long before it expires. Default 30s.
	Skew time.Duration
}

const maxTokenResponse = 1 << 20

// Source fetches and caches tokens. It is safe for concurrent use.
type Source struct {
	cfg     Config
	client  *http.Client
	st      *store.Store
	fetches *prometheus.CounterVec
	now     func() time.Time

	mu       sync.Mutex
	cache    map[int64]*entry
	inflight map[int64]*call
}

type entry struct {
	version time.Time // the credential's updated_at the entry belongs to
	access  string
	refresh string    // issued by the server (or configured); used for the next fetch
	expires time.Time // zero: no expiry given
}

type call struct {
	done  chan struct{}
	token string
	err   error
}

// New returns a source that makes token requests with client (which should dial through the SSRF
// guard) and saves tokens through st (nil: keep them in memory only). reg receives
// walhook_oauth_token_fetches_total (nil: no metrics).
func New(cfg Config, client *http.Client, st *store.Store, reg prometheus.Registerer) *Source {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 30 * time.Second
	}
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "walhook_oauth_token_fetches_total",
		Help: "OAuth token requests made, by outcome (success, error).",
	}, []string{"outcome"})
	if reg != nil {
		if err := reg.Register(fetches); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					fetches = existing
				}
			}
		}
	}
	return &Source{cfg: cfg, client: client, st: st, fetches: fetches, now: time.Now,
		cache: map[int64]*entry{}, inflight: map[int64]*call{}}
}

// Token returns a valid access token for c, from the cache, the credential's stored token, or a
// fetch. A credential with ID 0 (an unsaved one, in a test send) is fetched every time.
func (s *Source) Token(ctx context.Context, c webhook.OAuthCredential) (string, error) {
	if c.ID == 0 {
		e, err := s.fetch(ctx, c, "")
		if err != nil {
			return "", err
		}
		return e.access, nil
	}
	s.mu.Lock()
	e := s.cache[c.ID]
	if e == nil || !e.version.Equal(c.UpdatedAt) {
		e = &entry{version: c.UpdatedAt, refresh: c.RefreshToken, access: c.AccessToken}
		if c.TokenExpiresAt != nil {
			e.expires = *c.TokenExpiresAt
		}
		s.cache[c.ID] = e
	}
	if e.access != "" && (e.expires.IsZero() || s.now().Add(s.cfg.Skew).Before(e.expires)) {
		tok := e.access
		s.mu.Unlock()
		return tok, nil
	}
	cl := s.inflight[c.ID]
	if cl == nil {
		cl = &call{done: make(chan struct{})}
		s.inflight[c.ID] = cl
		refresh := e.refresh
		s.mu.Unlock()
		// The fetch is shared: it must not die with the first caller's context.
		go s.run(context.WithoutCancel(ctx), c, refresh, cl)
	} else {
		s.mu.Unlock()
	}
	select {
	case <-cl.done:
		return cl.token, cl.err
	case <-ctx.Done():
		return "", fmt.Errorf("wait for oauth token: %w", ctx.Err())
	}
}

func (s *Source) run(ctx context.Context, c webhook.OAuthCredential, refresh string, cl *call) {
	e, err := s.fetch(ctx, c, refresh)
	s.mu.Lock()
	delete(s.inflight, c.ID)
	if err == nil {
		if cur := s.cache[c.ID]; cur != nil && cur.version.Equal(c.UpdatedAt) {
			cur.access, cur.expires = e.access, e.expires
			if e.refresh != "" {
				cur.refresh = e.refresh
			}
		}
	}
	s.mu.Unlock()
	if err == nil && s.st != nil {
		var exp *time.Time
		if !e.expires.IsZero() {
			exp = &e.expires
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		// A failed save costs only a refetch later; the token is good.
		_ = s.st.DispatchOAuthTokenSave(sctx, c, e.access, e.refresh, exp)
		cancel()
	}
	if err == nil {
		cl.token = e.access
	}
	cl.err = err
	close(cl.done)
}

// Invalidate drops token from the cache of credential c (after an endpoint answered 401 to it),
// so the next Token fetches a new one. A token already replaced is left alone.
func (s *Source) Invalidate(c webhook.OAuthCredential, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cache[c.ID]; e != nil && e.access == token {
		e.access = ""
	}
}

// fetch makes one token request: the refresh_token grant when a refresh token is known (and the
// credential is not client_credentials), otherwise the credential's grant.
func (s *Source) fetch(ctx context.Context, c webhook.OAuthCredential, refresh string) (*entry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	e, err := s.request(ctx, c, refresh)
	if err != nil && refresh != "" && c.GrantType == webhook.GrantClientCredentials {
		e, err = s.request(ctx, c, "")
	}
	outcome := "success"
	if err != nil {
		outcome = "error"
	}
	s.fetches.WithLabelValues(outcome).Inc()
	return e, err
}

func (s *Source) request(ctx context.Context, c webhook.OAuthCredential, refresh string) (*entry, error) {
	v := url.Values{}
	grant := c.GrantType
	if refresh != "" && grant != webhook.GrantClientCredentials {
		grant = webhook.GrantRefreshToken
	}
	v.Set("grant_type", string(grant))
	switch grant {
	case webhook.GrantAuthorizationCode:
		v.Set("code", c.Code)
	case webhook.GrantRefreshToken:
		if refresh == "" {
			refresh = c.RefreshToken
		}
		v.Set("refresh_token", refresh)
	}
	if c.ClientID != "" {
		v.Set("client_id", c.ClientID)
	}
	if c.ClientSecret != "" {
		v.Set("client_secret", c.ClientSecret)
	}
	if c.Scope != "" {
		v.Set("scope", c.Scope)
	}
	for _, kv := range c.ExtraParams {
		if kv.Key != "" && v.Get(kv.Key) == "" {
			v.Set(kv.Key, kv.Value)
		}
	}
	u, err := url.Parse(c.TokenURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fetch oauth token: invalid token URL %q", c.TokenURL)
	}
	var req *http.Request
	if strings.EqualFold(c.Method, http.MethodGet) {
		q := u.Query()
		for k, vs := range v {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(v.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fetch oauth token: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error repeats the request URL, which with GET holds the client secret: say the
		// host and keep only the cause. (The dispatcher also redacts every error it stores.)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetch oauth token from %s (%s): %w", u.Host, req.Method, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("fetch oauth token from %s: read answer: %w", u.Host, err)
	}
	tok, perr := parseToken(resp.Header.Get("Content-Type"), body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("token endpoint %s answered %d", u.Host, resp.StatusCode)
		if perr == nil && tok.Error != "" {
			msg += ": " + tok.Error
			if tok.ErrorDescription != "" {
				msg += " (" + tok.ErrorDescription + ")"
			}
		}
		return nil, fmt.Errorf("fetch oauth token: %s", msg)
	}
	if perr != nil {
		return nil, fmt.Errorf("fetch oauth token from %s: %w", u.Host, perr)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("fetch oauth token from %s: the answer has no access_token", u.Host)
	}
	e := &entry{access: tok.AccessToken, refresh: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		e.expires = s.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return e, nil
}

type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	ExpiresIn        int64  `json:"-"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// parseToken reads a token answer: JSON (RFC 6749 §5.1) or, as some servers send, a form.
func parseToken(contentType string, body []byte) (tokenAnswer, error) {
	var t tokenAnswer
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return t, fmt.Errorf("parse token answer: %w", err)
		}
		t.AccessToken, t.RefreshToken = v.Get("access_token"), v.Get("refresh_token")
		t.Error, t.ErrorDescription = v.Get("error"), v.Get("error_description")
		t.ExpiresIn, _ = strconv.ParseInt(v.Get("expires_in"), 10, 64)
		return t, nil
	}
	var raw struct {
		tokenAnswer
		ExpiresIn json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return t, fmt.Errorf("parse token answer: %w", err)
	}
	t = raw.tokenAnswer
	if s := strings.Trim(string(raw.ExpiresIn), `"`); s != "" && s != "null" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e9 {
			t.ExpiresIn = int64(f)
		}
	}
	return t, nil
}
