// Package admin is walhook's admin service: the REST API under /v1 that company members use to
// configure webhooks and OAuth credentials and read the history, the web page, and the health and
// metrics endpoints every walhook process serves. It reaches the database only through
// relay/store.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/netguard"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// Config configures the HTTP listener.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8080.
	Addr string
	// API turns on the /v1 API and the web page. Off for a relay-only process, which still
	// serves /healthz, /readyz and /metrics.
	API bool
	// ShutdownTimeout bounds the graceful stop of the listener. Default 10s.
	ShutdownTimeout time.Duration
	// AllowNets are networks a webhook or token URL may name as a literal IP address although
	// they are not public (loopback, private…): for development and tests. Default none. Host
	// names are checked when the relay dials.
	AllowNets []netip.Prefix
	// SecretOverlap is how long a rotated-out signing secret keeps signing. Default 24h.
	SecretOverlap time.Duration
	// Quotas are the per-company limits (quota.go); zero fields take their defaults.
	Quotas Quotas
	// TokenMaxLifetime caps the lifetime of API tokens created through the API: a token asked
	// for without an expiry, or for longer, gets (or is refused past) this much. Zero: no cap, and
	// a token may never expire — the operator's explicit choice (the --token-max-lifetime flag
	// defaults to 90 days).
	TokenMaxLifetime time.Duration
	// AuthFailures slows down repeated failed sign-ins and token checks from one address
	// (throttle.go); zero fields take their defaults.
	AuthFailures AuthFailureConfig
	// FrameAncestors are the host application's origins that may show the web page in an iframe,
	// as ParseFrameAncestors returns them (scheme://host[:port]; frame.go has the rules). Empty
	// (the default): the page refuses every frame. An entry New cannot check is dropped with an
	// error logged, so a bad list never widens what may frame the page.
	FrameAncestors []string
	// PublicURL is the scheme, host and optional path prefix browsers reach this server's web page
	// at (https://walhook.example.com): the start of the portal links the platform API mints.
	// Empty: http:// and the listen address.
	PublicURL string
	// PortalLinkTTL is how long a portal link (a one-time sign-in code the platform API mints)
	// stays valid. Default 5 minutes.
	PortalLinkTTL time.Duration
}

// Tester sends one test request for a webhook, saved or not, with an OAuth credential when the
// webhook has one, and reports what happened. relay/dispatch's Sender implements it. An endpoint
// that answers an error is a result (Succeeded false), not an error; err is for a test that could
// not run at all.
type Tester interface {
	Test(ctx context.Context, w webhook.Webhook, cred *webhook.OAuthCredential, payload json.RawMessage) (webhook.TestResult, error)
}

// ReadyFunc reports whether a part of the process is ready, with a reason when not.
type ReadyFunc func(ctx context.Context) error

// Server is the admin HTTP service.
type Server struct {
	cfg      Config
	store    *store.Store
	tester   Tester
	guard    *netguard.Guard
	log      zerolog.Logger
	gatherer prometheus.Gatherer
	ready    []ReadyFunc
	throttle *throttle
	stopping atomic.Bool
	// boundAddr is the address Run listens on, once it does (the default of portal links).
	boundAddr atomic.Pointer[string]
	mux       *http.ServeMux
}

// New builds the server. tester runs test sends (nil: the test endpoints answer 503); gatherer
// is the registry /metrics exposes; ready are the readiness checks /readyz runs.
func New(cfg Config, st *store.Store, tester Tester, log zerolog.Logger, gatherer prometheus.Gatherer, ready ...ReadyFunc) *Server {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.SecretOverlap == 0 {
		cfg.SecretOverlap = 24 * time.Hour
	}
	if cfg.PortalLinkTTL <= 0 {
		cfg.PortalLinkTTL = defaultPortalLinkTTL
	}
	cfg.Quotas.defaults()
	cfg.AuthFailures.defaults()
	cfg.FrameAncestors = checkedFrameAncestors(cfg.FrameAncestors, log)
	s := &Server{cfg: cfg, store: st, tester: tester, guard: netguard.New(cfg.AllowNets), log: log, gatherer: gatherer, ready: ready,
		throttle: newThrottle(cfg.AuthFailures, time.Now), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	if cfg.API {
		s.mux.HandleFunc("GET /openapi.yaml", serveOpenAPI)
		s.mux.HandleFunc("POST /v1/login", s.login) // public: the one-time code is the credential (login.go)
		for _, rt := range s.routes() {
			s.mux.HandleFunc(rt.method+" "+rt.path, s.serve(rt))
		}
		s.mountWeb() // the web page: GET / and GET /ui/… (web.go)
	}
	return s
}

// allowIP reports whether a URL may name a as its host: what the relay's dial-time guard would
// let through, with the same allow-list.
func (s *Server) allowIP(a netip.Addr) bool { return s.guard.Check(a) == nil }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP routes a request. Under /v1 the router's own answers — no such path (404), or a path
// without that method (405, with Allow) — are given as problem details like every other API
// error, so clients parse one error format.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		if h, pattern := s.mux.Handler(r); pattern == "" {
			rec := &routerAnswer{header: http.Header{}}
			h.ServeHTTP(rec, r)
			if rec.status == http.StatusNotFound || rec.status == http.StatusMethodNotAllowed {
				detail := "no such API path: " + r.URL.Path
				if allow := rec.header.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
					detail = fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)
				}
				s.writeError(w, r, &problem{Status: rec.status, Detail: detail})
				return
			}
		}
	}
	s.mux.ServeHTTP(w, r)
}

// routerAnswer records what the router's built-in 404/405 handler would answer.
type routerAnswer struct {
	header http.Header
	status int
}

func (a *routerAnswer) Header() http.Header { return a.header }

func (a *routerAnswer) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return len(b), nil
}

func (a *routerAnswer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if p := s.store.Pool(); p != nil {
		if err := p.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "database: %v\n", err)
			return
		}
	}
	for _, f := range s.ready {
		if err := f(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "%v\n", err)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// SetStopping turns readiness false ahead of a shutdown, so load balancers stop sending.
func (s *Server) SetStopping() { s.stopping.Store(true) }

// Run listens until ctx is cancelled, then shuts down gracefully within ShutdownTimeout.
// started, when not nil, receives the bound address once listening.
func (s *Server) Run(ctx context.Context, started func(addr net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	bound := ln.Addr().String()
	s.boundAddr.Store(&bound)
	if started != nil {
		started(ln.Addr())
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("admin listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.SetStopping()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
