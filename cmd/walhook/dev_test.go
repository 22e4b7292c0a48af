package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/internal/xtest"
)

var adminLine = regexp.MustCompile(`Admin API\s+http://([0-9.:]+)/v1`)

// startDev runs `walhook dev` (with extra flags) and returns it and its admin address once it
// serves; it is stopped at the end of the test if the test did not stop it.
func startDev(t *testing.T, dir string, extra ...string) (*xtest.Proc, string) {
	t.Helper()
	p := xtest.Start(t, nil, append([]string{"dev", "--dir", dir, "--addr", "127.0.0.1:0", "--log-format", "json"}, extra...)...)
	p.StopAtEnd(t, time.Minute) // SIGTERM, so that its PostgreSQL stops too
	return p, p.WaitLog(t, adminLine, 90*time.Second)[1]
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stopDev stops `walhook dev` with SIGTERM, which must end it with exit code 0 within a minute.
func stopDev(t *testing.T, p *xtest.Proc) {
	t.Helper()
	require.Zero(t, p.Stop(t, time.Minute), "walhook dev exits 0 on SIGTERM")
}

// TestDev runs `walhook dev` as a real process twice on the same directory: it serves health,
// readiness and metrics, writes the token and database URL, stops its PostgreSQL on SIGTERM, and
// keeps its data (the same token still works) across a restart.
func TestDev(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".walhook")

	dev, addr := startDev(t, dir)
	code, body := get(t, "http://"+addr+"/healthz", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, _ = get(t, "http://"+addr+"/readyz", "")
	require.Equal(t, http.StatusOK, code)
	code, body = get(t, "http://"+addr+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "go_goroutines")

	tok, err := os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(tok), "whk_"))
	dbURL, err := os.ReadFile(filepath.Join(dir, "database_url"))
	require.NoError(t, err)
	require.Contains(t, string(dbURL), "postgres://")
	// The platform token: private to the user, and it lists the companies.
	ptok, err := os.ReadFile(filepath.Join(dir, "platform_token"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(ptok), "whp_"))
	fi, err := os.Stat(filepath.Join(dir, "platform_token"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	code, body = get(t, "http://"+addr+"/v1/platform/companies", strings.TrimSpace(string(ptok)))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"external_id":"1"`)

	// The README's quick start, verbatim but for the two addresses: it subscribes a receiver to
	// the demo's outbox event and emits it with walhook.emit; a contact.created webhook (made
	// here) gets the INSERT.
	requireSlot(t, strings.TrimSpace(string(dbURL)))
	hooks := newHookReceiver(t)
	createWebhook(t, addr, strings.TrimSpace(string(tok)), `{"name": "contacts", "url": "`+hooks.url+`", "method": "POST", "event": "contact.created", "raw_data": true, "active": true}`)
	for _, line := range readmeQuickStart(t) {
		line = strings.ReplaceAll(line, "localhost:8080", addr)
		line = strings.ReplaceAll(line, "http://127.0.0.1:9000/hook", hooks.url)
		sh := exec.Command("sh", "-c", line)
		sh.Dir = filepath.Dir(dir) // the README runs from where `make dev` made ./.walhook
		out, err := sh.CombinedOutput()
		require.NoError(t, err, "README line %q: %s", line, out)
	}
	created := hooks.wait(t, "contact.created")
	require.Equal(t, "1", created.CompanyID)
	require.Equal(t, "Ada", created.Data["name"])
	note := hooks.wait(t, "contact.note_added")
	require.Equal(t, "1", note.CompanyID)
	require.Equal(t, map[string]any{"contact_id": 1.0, "note": "Called back"}, note.Data)
	stopDev(t, dev)
	_, err = os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "PostgreSQL stopped with walhook dev")

	dev, addr = startDev(t, dir)
	tok2, err := os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)
	require.Equal(t, string(tok), string(tok2), "the owner's token survives a restart")
	ptok2, err := os.ReadFile(filepath.Join(dir, "platform_token"))
	require.NoError(t, err)
	require.Equal(t, string(ptok), string(ptok2), "the platform token survives a restart")
	code, _ = get(t, "http://"+addr+"/healthz", "")
	require.Equal(t, http.StatusOK, code)
	stopDev(t, dev)
}

// TestDevCatalog runs `walhook dev --catalog` with catalogs of one's own: a file that does not
// parse, and one naming a table the dev database lacks, stop the start with a message naming the
// file and the entry; after the table is created, the same command serves that catalog and a row
// written to the user's table reaches a webhook of its event.
func TestDevCatalog(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, ".walhook")
	writeFile := func(name, content string) string {
		p := filepath.Join(root, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	deals := writeFile("deals.yaml", `events:
  - key: deal.won
    description: A deal was won
    table: public.deals
    operations: [insert]
    tenant_column: company_id
    sample: {id: 1, company_id: "1", amount: 1200}
`)

	bad := writeFile("bad.yaml", "events:\n  - key: deal.won\n    tabel: public.deals\n")
	stderr := devFails(t, dir, "--catalog", bad)
	require.Contains(t, stderr, "walhook dev: --catalog: "+bad+": ")
	require.Contains(t, stderr, "field tabel not found")
	_, err := os.Stat(filepath.Join(dir, "pgdata"))
	require.ErrorIs(t, err, os.ErrNotExist, "a catalog that does not parse fails before PostgreSQL starts")

	stderr = devFails(t, dir, "--catalog", deals)
	require.Contains(t, stderr, "walhook dev: --catalog "+deals+": catalog entry 1 (deal.won): unknown table public.deals")

	// The user creates their table in the dev database, as the README says.
	ctx := t.Context()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "pgdata"), Durable: true})
	require.NoError(t, err)
	url := cluster.URL("walhook")
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TABLE public.deals (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text NOT NULL, amount numeric)`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, cluster.Stop(ctx))

	dev, addr := startDev(t, dir, "--catalog", deals)
	tok, err := os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)
	token := strings.TrimSpace(string(tok))
	code, body := get(t, "http://"+addr+"/v1/events", token)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"deal.won"`)
	hooks := newHookReceiver(t)
	createWebhook(t, addr, token, `{"name": "deals", "url": "`+hooks.url+`", "method": "POST", "event": "deal.won", "raw_data": true, "active": true}`)
	requireSlot(t, url)
	conn, err = pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO deals (company_id, amount) VALUES ('1', 1200)`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	won := hooks.wait(t, "deal.won")
	require.Equal(t, "1", won.CompanyID)
	require.Equal(t, 1200.0, won.Data["amount"])
	stopDev(t, dev)
}

// requireSlot checks, right after `walhook dev` says it is running, that its replication slot
// exists and is consistent: a write the user makes from then on is captured (the slot is set up
// before the announcement, not by the capture leader some moments later).
func requireSlot(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	var ready bool
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'walhook'), false)`).Scan(&ready)
	require.NoError(t, err)
	require.True(t, ready, "walhook dev announced itself before its replication slot existed")
}

// devFails runs `walhook dev` expecting it to exit with code 1, and returns its output.
func devFails(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	code, out := xtest.Run(t, nil, append([]string{"dev", "--dir", dir, "--addr", "127.0.0.1:0", "--log-format", "json"}, extra...)...)
	require.Equal(t, 1, code, "walhook dev %v should fail; output:\n%s", extra, out)
	return out
}

// readmeQuickStart returns the shell commands of the README's quick start that talk to a running
// `walhook dev` (the curl and psql lines, continuation lines joined).
func readmeQuickStart(t *testing.T) []string {
	t.Helper()
	lines := xtest.DocCommands(t, "../../README.md", "in another terminal", "\n## ", "curl ", "psql ")
	require.GreaterOrEqual(t, len(lines), 4, "the quick start's commands:\n%s", strings.Join(lines, "\n"))
	require.Contains(t, strings.Join(lines, "\n"), "walhook.emit('1', 'contact.note_added'", "the README emits the demo's outbox event for the demo company")
	return lines
}

// envelope is the part of a delivered event the dev tests look at.
type envelope struct {
	Type      string         `json:"type"`
	CompanyID string         `json:"company_id"`
	Data      map[string]any `json:"data"`
}

// hookReceiver is a webhook endpoint on 127.0.0.1 that keeps the envelopes it receives.
type hookReceiver struct {
	url string
	got chan envelope
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	r := &hookReceiver{got: make(chan envelope, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var e envelope
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&e); err == nil {
			r.got <- e
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

// wait returns the first envelope of type typ, failing after a minute.
func (r *hookReceiver) wait(t *testing.T, typ string) envelope {
	t.Helper()
	timeout := time.After(time.Minute)
	var seen []string
	for {
		select {
		case e := <-r.got:
			if e.Type == typ {
				return e
			}
			seen = append(seen, e.Type)
		case <-timeout:
			t.Fatalf("no %s delivery within a minute (received %v)", typ, seen)
		}
	}
}

// createWebhook creates a webhook through the admin API.
func createWebhook(t *testing.T, addr, token, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/webhooks", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "create webhook: %s", b)
}

func TestHelpListsCommandsAndEnv(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	require.Equal(t, 0, run([]string{"help"}, &out, &out))
	for _, c := range []string{"serve", "relay", "admin", "migrate", "dev", "company", "member", "token"} {
		require.Contains(t, out.String(), "  "+c)
	}
	out.Reset()
	var cfg serveConfig
	fs := newFlagSet("serve")
	fs.SetOutput(&out)
	cfg.register(fs)
	require.ErrorIs(t, parseFlags(fs, []string{"--help"}, "Usage: walhook serve"), flag.ErrHelp)
	require.Contains(t, out.String(), "--database-url  [WALHOOK_DATABASE_URL]")
	out.Reset()
	require.Equal(t, 2, run([]string{"nope"}, &out, &out))
	require.Contains(t, out.String(), `unknown command "nope"`)
}

func TestEnvOverridesDefaultsButNotFlags(t *testing.T) {
	t.Setenv("WALHOOK_ADDR", "127.0.0.1:9999")
	t.Setenv("WALHOOK_LOG_LEVEL", "debug")
	var cfg serveConfig
	fs := newFlagSet("serve")
	cfg.register(fs)
	require.NoError(t, parseFlags(fs, []string{"--log-level", "warn"}, ""))
	require.Equal(t, "127.0.0.1:9999", cfg.admin.Addr)
	require.Equal(t, "warn", cfg.common.LogLevel)
}
