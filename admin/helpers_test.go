package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// fakeTester stands in for relay/dispatch's sender in tests that do not need a real send; it
// records what it was asked to send.
type fakeTester struct {
	mu    sync.Mutex
	calls []testCall
}

type testCall struct {
	w       webhook.Webhook
	cred    *webhook.OAuthCredential
	payload json.RawMessage
}

func (f *fakeTester) Test(_ context.Context, w webhook.Webhook, cred *webhook.OAuthCredential, payload json.RawMessage) (webhook.TestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, testCall{w, cred, payload})
	return webhook.TestResult{
		Request:   webhook.RequestSnapshot{Method: string(w.Method), URL: w.URL, Headers: map[string]string{}, Body: string(payload)},
		Status:    200,
		Succeeded: true,
	}, nil
}

func (f *fakeTester) last() testCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

// env is one test's admin server over its own database, with two companies: acme (an owner, a
// manager whose role holds manage_webhooks, and a viewer with no permission) and other (an owner).
type env struct {
	t      *testing.T
	ctx    context.Context
	st     *store.Store
	pool   *pgxpool.Pool
	srv    *httptest.Server
	tester *fakeTester

	owner, manager, viewer, other     string // tokens
	platform                          string // a platform token (the host application's), named hostapp
	ownerM, managerM, viewerM, otherM store.Member
	role                              store.Role
}

var seq atomic.Int64

// loopback is the allow-list of the tests' receivers, which listen on 127.0.0.1.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// realSender is relay/dispatch's sender, for tests whose Test calls must reach a receiver of
// theirs (newEnv's tester).
func realSender() *dispatch.Sender {
	return dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: loopback, AttemptTimeout: 5 * time.Second}, nil, nil)
}

// runDispatcher runs a real relay/dispatch dispatcher over e's database until the test ends, for
// tests of what the API shows of real deliveries. It sends to the loopback receivers, polls every
// 50 ms unless cfg says otherwise, and does not jitter retries, so cfg.Schedule alone times them.
func (e *env) runDispatcher(cfg dispatch.Config) {
	e.t.Helper()
	cfg.Version = "test"
	cfg.AllowPrivate = loopback
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	cfg.Jitter = -1
	d, err := dispatch.New(cfg, e.st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); require.NoError(e.t, <-done) })
}

func newEnv(t *testing.T, tester Tester) *env {
	t.Helper()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	e := &env{t: t, ctx: ctx, st: st, pool: pool}
	require.NoError(t, st.EventTypeSync(ctx, []webhook.EventType{
		{Key: "contact.created", Description: "A contact was created", Source: webhook.SourceTable, SourceTable: "contacts",
			Operations: []string{"insert"}, TenantColumn: "company_id", Sample: json.RawMessage(`{"id":1,"name":"Ada","email":"ada@example.com"}`)},
		{Key: "contact.updated", Description: "A contact was updated", Source: webhook.SourceTable, SourceTable: "contacts",
			Operations: []string{"update"}, TenantColumn: "company_id", Sample: json.RawMessage(`{"id":1}`)},
	}))
	for _, id := range []string{"acme", "other"} {
		_, err := st.CompanyCreate(ctx, id, "Company "+id)
		require.NoError(t, err)
	}
	var err error
	e.role, err = st.RoleCreate(ctx, "acme", "Developers")
	require.NoError(t, err)
	e.role, err = st.RoleSetPermissions(ctx, "acme", e.role.ID, []webhook.Permission{webhook.PermManageWebhooks})
	require.NoError(t, err)
	mk := func(company, email string, owner bool, role *int64) (store.Member, string) {
		m, err := st.MemberCreate(ctx, store.Member{CompanyID: company, Email: email, IsOwner: owner, RoleID: role})
		require.NoError(t, err)
		tok, _, err := st.APITokenCreate(ctx, company, m.ID, "test", nil)
		require.NoError(t, err)
		return m, tok
	}
	e.ownerM, e.owner = mk("acme", "owner@acme.test", true, nil)
	e.managerM, e.manager = mk("acme", "dev@acme.test", false, &e.role.ID)
	e.viewerM, e.viewer = mk("acme", "viewer@acme.test", false, nil)
	e.otherM, e.other = mk("other", "owner@other.test", true, nil)
	e.platform, _, err = st.PlatformTokenCreate(ctx, "hostapp", nil)
	require.NoError(t, err)
	if tester == nil {
		e.tester = &fakeTester{}
		tester = e.tester
	}
	s := New(Config{API: true, AllowNets: loopback}, st, tester,
		zerolog.Nop(), prometheus.NewRegistry())
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	raw    []byte
}

func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.raw, &m), "body: %s", r.raw)
	return m
}

// fieldErrors returns a problem's errors as field → message.
func (r resp) fieldErrors(t *testing.T) map[string]string {
	t.Helper()
	var p problem
	require.NoError(t, json.Unmarshal(r.raw, &p), "body: %s", r.raw)
	out := map[string]string{}
	for _, e := range p.Errors {
		out[e.Field] = e.Message
	}
	return out
}

// requestBody is a test request's body: none for nil, a string or []byte sent as is, any other
// value encoded as JSON.
func requestBody(t *testing.T, body any) io.Reader {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(b)
	case []byte:
		return bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		return bytes.NewReader(raw)
	}
}

// do sends a request; body may be nil, a string or []byte (sent as is) or a value encoded as JSON.
func (e *env) do(method, path, token string, body any) resp {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, requestBody(e.t, body))
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	if res.StatusCode >= 400 && res.StatusCode != http.StatusMethodNotAllowed {
		require.Equal(e.t, "application/problem+json", res.Header.Get("Content-Type"), "%s %s: %s", method, path, raw)
	}
	return resp{status: res.StatusCode, header: res.Header, raw: raw}
}

// must sends a request and requires the status.
func (e *env) must(status int, method, path, token string, body any) map[string]any {
	e.t.Helper()
	r := e.do(method, path, token, body)
	require.Equal(e.t, status, r.status, "%s %s: %s", method, path, r.raw)
	if len(r.raw) == 0 {
		return nil
	}
	return r.obj(e.t)
}

// hookBody is a valid webhook for POST /v1/webhooks.
func hookBody(name string) map[string]any {
	return map[string]any{"name": name, "url": "https://hooks.example.com/in", "method": "POST", "event": "contact.created"}
}

// oauthBody is a valid OAuth credential (client credentials grant) for POST /v1/oauth.
func oauthBody(name string) map[string]any {
	return map[string]any{"name": name, "token_url": "https://auth.example.com/token", "grant_type": "client_credentials",
		"client_id": "id", "client_secret": "s"}
}

// with returns a copy of body with mod's fields set over it (a nil value is sent as JSON null):
// a valid body made invalid one field at a time.
func with(body, mod map[string]any) map[string]any {
	out := maps.Clone(body)
	maps.Copy(out, mod)
	return out
}

// many returns n objects made by f, for lists over a limit.
func many(n int, f func(i int) map[string]any) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// newWebhook creates a webhook of acme through the store and returns its id.
func (e *env) newWebhook(name string, mod func(*webhook.Webhook)) webhook.Webhook {
	e.t.Helper()
	w := webhook.Webhook{CompanyID: "acme", Name: name, URL: "https://hooks.example.com/in", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RawData: true}
	if mod != nil {
		mod(&w)
	}
	out, err := e.st.WebhookCreate(e.ctx, w, &e.ownerM.ID)
	require.NoError(e.t, err)
	return out
}

func (e *env) newOAuth(company, name string) webhook.OAuthCredential {
	e.t.Helper()
	c, err := e.st.OAuthCredentialCreate(e.ctx, webhook.OAuthCredential{
		CompanyID: company, Name: name, TokenURL: "https://auth.example.com/token", GrantType: webhook.GrantClientCredentials,
		ClientID: "cid", ClientSecret: "client-secret-value",
	}, nil)
	require.NoError(e.t, err)
	return c
}

// newDelivery records an event and a delivery of it in state, as capture and dispatch would, with
// one attempt when it is not pending. Test fixtures write these tables directly: the admin API
// only reads them.
func (e *env) newDelivery(w webhook.Webhook, state string, createdAt time.Time) int64 {
	e.t.Helper()
	n := seq.Add(1)
	var evID, dID int64
	env := fmt.Sprintf(`{"id":"evt_%d","type":%q,"company_id":%q,"occurred_at":"2026-01-01T00:00:00Z","data":{"email":"ada@example.com","n":%d}}`,
		n, w.EventKeys[0], w.CompanyID, n)
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		VALUES ($1, $2, $3, $4, now()) RETURNING id`, fmt.Sprintf("test:%d", n), w.CompanyID, w.EventKeys[0], env).Scan(&evID))
	attempts := 0
	if state != "pending" {
		attempts = 1
	}
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, attempts,
		last_status_code, created_at) SELECT $1, $2, $3, e.occurred_at, $4, $5, $6, $7, $8 FROM walhook.event e WHERE e.id = $3 RETURNING id`,
		w.CompanyID, w.ID, evID, w.EventKeys[0], state, attempts, map[string]any{"succeeded": 200, "failed": 500}[state], createdAt).Scan(&dID))
	if attempts > 0 {
		outcome := state
		_, err := e.pool.Exec(e.ctx, `INSERT INTO walhook.attempt (delivery_id, event_at, company_id, webhook_id, n, started_at, duration_ms,
			request_method, request_url, request_headers, request_body, response_status, response_body, outcome)
			SELECT $1, d.event_at, $2, $3, 1, $4, 12, 'POST', 'https://hooks.example.com/in',
			'{"Authorization":"Bearer live-token","X-Api-Key":"key-value","Content-Type":"application/json"}', '{}', $5, 'ok', $6
			FROM walhook.delivery d WHERE d.id = $1`,
			dID, w.CompanyID, w.ID, createdAt, map[string]int{"succeeded": 200, "failed": 500}[state], outcome)
		require.NoError(e.t, err)
	}
	return dID
}

// pub is the public id of a delivery of a company, as the API names it.
func (e *env) pub(company string, id int64) string {
	e.t.Helper()
	s, err := e.st.DeliveryPublicID(e.ctx, company, id)
	require.NoError(e.t, err)
	return s
}

// queryMap runs q with args on the test's database and returns its rows as a map from the first
// column to the second.
func queryMap[K comparable, V any](t *testing.T, e *env, q string, args ...any) map[K]V {
	t.Helper()
	rows, err := e.pool.Query(e.ctx, q, args...)
	require.NoError(t, err)
	out := map[K]V{}
	var k K
	var v V
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		out[k] = v
		return nil
	})
	require.NoError(t, err)
	return out
}

func ownerPrincipal() store.Principal { return store.Principal{IsOwner: true} }
