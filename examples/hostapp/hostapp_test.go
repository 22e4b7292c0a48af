package main

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/client"
	"github.com/walhook/walhook/internal/xtest"
)

func TestMain(m *testing.M) { xtest.Main(m) }

var (
	adminLine  = regexp.MustCompile(`Admin API\s+http://([0-9.:]+)/v1`)
	iframeSrc  = regexp.MustCompile(`<iframe id="walhook" title="Webhooks" src="([^"]+)"`)
	contactRow = regexp.MustCompile(`<tr data-id="(\d+)"><td>Grace Hopper</td>`)
	userRow    = regexp.MustCompile(`<tr data-id="(\d+)"><td>ivy@globex.test</td><td>reader</td>`)
)

// TestHostApp runs the worked example end to end, the way docs/integration.md tells a developer
// to: `walhook dev` once, the application's tables created, `walhook dev` again with the
// example's catalog and --frame-ancestors naming the application, then the application reading
// ./.walhook/database_url and ./.walhook/platform_token. Through the application's own pages it
// signs up a company (provisioned into walhook with its owner through the platform API), opens
// the settings screen, whose iframe's portal link signs in once and only once, subscribes a real
// receiver with the token that sign-in gave, adds a contact through the form, and checks the
// receiver got contact.created for that company, signed with the webhook's secret; then deletes
// it (contact.deleted). A reader teammate's link signs in without the right to create webhooks;
// provisioning again after the application lost its record of it takes walhook's 409s as its
// own. Last, docs/integration.md's platform API commands run as written.
func TestHostApp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), ".walhook")

	// The first start makes the private PostgreSQL and the database; the application's tables go
	// in (as `psql -f examples/hostapp/schema.sql` does), so the catalog can name them.
	dev := startDev(t, dir)
	pool, err := pgxpool.New(ctx, readFile(t, dir, "database_url"))
	require.NoError(t, err)
	require.NoError(t, migrate(ctx, pool))
	captured, err := (&db{pool: pool}).captured(ctx)
	require.NoError(t, err)
	require.False(t, captured, "walhook dev with the demo catalog does not capture the application's table")
	pool.Close()
	dev.stop(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	origin := "http://" + ln.Addr().String()
	catalog, err := filepath.Abs("catalog.yaml")
	require.NoError(t, err)
	dev = startDev(t, dir, devHostappFlags(t, catalog, origin)...)
	walhookURL := "http://" + dev.addr
	pool, err = pgxpool.New(ctx, readFile(t, dir, "database_url"))
	require.NoError(t, err)
	captured, err = (&db{pool: pool}).captured(ctx)
	pool.Close()
	require.NoError(t, err)
	require.True(t, captured, "with the example's catalog, walhook captures hostapp.contacts")

	// The application, as `go run ./examples/hostapp --walhook-url … --walhook-dir …` runs it.
	cfg, err := parseConfig([]string{"--walhook-url", walhookURL, "--walhook-dir", dir}, io.Discard)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cfg.PlatformToken, "whp_"), "the platform token walhook dev wrote")
	require.Equal(t, "127.0.0.1:8090", cfg.Addr, "the address make dev-hostapp's --frame-ancestors names")
	appCtx, stopApp := context.WithCancel(ctx)
	out := &lockedBuffer{}
	ran := make(chan error, 1)
	go func() { ran <- run(appCtx, cfg, ln, out) }()
	t.Cleanup(func() {
		stopApp()
		require.NoError(t, <-ran, "the application stops cleanly")
	})

	// A form with a field missing writes nothing and names the field.
	p := post(t, origin+"/companies", url.Values{"name": {"Globex"}, "email": {"not an address"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.status)
	require.Contains(t, p.body, "Enter one email address")
	require.Contains(t, out.String(), "hostapp is running on "+origin)

	// Sign-up: the company and its owner, in the application and in walhook.
	p = post(t, origin+"/companies", url.Values{"name": {"Globex"}, "email": {"hank@globex.test"}})
	require.Equal(t, http.StatusOK, p.status, p.body)
	companyID, ok := strings.CutPrefix(p.path, "/companies/")
	require.True(t, ok, "the sign-up lands on the new company's page: %s", p.path)
	plat, err := client.NewClientWithResponses(walhookURL, client.WithBearerToken(cfg.PlatformToken))
	require.NoError(t, err)
	got, err := plat.PlatformGetCompanyWithResponse(ctx, companyID)
	require.NoError(t, err)
	require.NotNil(t, got.JSON200, "walhook knows the company by the application's id: %s", got.Body)
	require.Equal(t, "Globex", got.JSON200.Name)
	require.Equal(t, companyID, got.JSON200.ExternalId)
	members, err := plat.PlatformListMembersWithResponse(ctx, companyID)
	require.NoError(t, err)
	require.NotNil(t, members.JSON200, "%s", members.Body)
	require.Len(t, members.JSON200.Items, 1)
	require.Equal(t, "hank@globex.test", members.JSON200.Items[0].Email)
	require.True(t, members.JSON200.Items[0].IsOwner)

	// The settings screen frames walhook's page on a portal link minted for this visit.
	link := settingsLink(t, origin+"/companies/"+companyID+"/settings")
	prefix := walhookURL + "/#login="
	require.True(t, strings.HasPrefix(link, prefix), "the iframe opens walhook's page on a portal link: %s", link)
	code := strings.TrimPrefix(link, prefix)
	require.NotEqual(t, code, strings.TrimPrefix(settingsLink(t, origin+"/companies/"+companyID+"/settings"), prefix), "every visit mints its own link")
	page, err := http.Get(walhookURL + "/")
	require.NoError(t, err)
	_ = page.Body.Close()
	require.Contains(t, page.Header.Get("Content-Security-Policy"), "frame-ancestors "+origin, "walhook lets the application frame its page")

	// The page in the frame exchanges the code: once.
	anon, err := client.NewClientWithResponses(walhookURL)
	require.NoError(t, err)
	login, err := anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: code})
	require.NoError(t, err)
	require.NotNil(t, login.JSON200, "the portal link signs in: %s", login.Body)
	again, err := anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: code})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, again.StatusCode(), "a portal link signs in once")

	// Signed in as Globex's owner, as in the frame: a webhook of contact.created to a receiver.
	rc := newReceiver(t)
	member, err := client.NewClientWithResponses(walhookURL, client.WithBearerToken(login.JSON200.Token))
	require.NoError(t, err)
	active, raw := true, true
	for _, event := range []string{"contact.created", "contact.deleted"} {
		hook, err := member.CreateWebhookWithResponse(ctx, client.WebhookInput{
			Name: "CRM " + event, Url: rc.url + "/" + event, Method: "POST", Events: &client.EventKeys{event}, Active: &active, RawData: &raw,
		})
		require.NoError(t, err)
		require.NotNil(t, hook.JSON201, "create webhook: %s", hook.Body)
		require.NotNil(t, hook.JSON201.Secret)
		rc.setSecret(t, "/hooks/"+event, *hook.JSON201.Secret)
	}

	// A contact added through the application's form is an INSERT; walhook sends it.
	p = post(t, origin+"/companies/"+companyID+"/contacts", url.Values{"name": {"Grace Hopper"}, "email": {"grace@globex.test"}})
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, "grace@globex.test")
	e := rc.wait(t)
	require.Equal(t, "contact.created", e.Type)
	require.Equal(t, "/hooks/contact.created", e.path)
	require.Equal(t, companyID, e.CompanyID)
	require.Equal(t, "Grace Hopper", e.Data["name"])
	require.Equal(t, "grace@globex.test", e.Data["email"])

	// Deleting it through the page is a DELETE, sent as contact.deleted with the old row.
	m := contactRow.FindStringSubmatch(p.body)
	require.NotNil(t, m, "the contact is listed:\n%s", p.body)
	p = post(t, origin+"/companies/"+companyID+"/contacts/"+m[1]+"/delete", nil)
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.NotContains(t, p.body, "grace@globex.test")
	e = rc.wait(t)
	require.Equal(t, "contact.deleted", e.Type)
	require.Equal(t, "/hooks/contact.deleted", e.path)
	require.Equal(t, companyID, e.CompanyID)
	require.Equal(t, "grace@globex.test", e.Data["email"])

	// A reader teammate: provisioned without a role, their own portal link signs them in to a
	// page where they can look but not change.
	p = post(t, origin+"/companies/"+companyID+"/users", url.Values{"email": {"ivy@globex.test"}, "role": {"reader"}})
	require.Equal(t, http.StatusOK, p.status, p.body)
	m = userRow.FindStringSubmatch(p.body)
	require.NotNil(t, m, "the teammate is listed:\n%s", p.body)
	link = settingsLink(t, origin+"/companies/"+companyID+"/settings?user="+m[1])
	login, err = anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: strings.TrimPrefix(link, prefix)})
	require.NoError(t, err)
	require.NotNil(t, login.JSON200, "the reader's portal link signs in: %s", login.Body)
	reader, err := client.NewClientWithResponses(walhookURL, client.WithBearerToken(login.JSON200.Token))
	require.NoError(t, err)
	me, err := reader.GetMeWithResponse(ctx)
	require.NoError(t, err)
	require.NotNil(t, me.JSON200, "%s", me.Body)
	require.Equal(t, "ivy@globex.test", *me.JSON200.Member.Email)
	require.Empty(t, *me.JSON200.Permissions)
	denied, err := reader.CreateWebhookWithResponse(ctx, client.WebhookInput{Name: "not mine", Url: rc.url + "/x", Method: "POST", Events: &client.EventKeys{"contact.created"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, denied.StatusCode())

	// The application stopped after walhook took the company and its owner but before it recorded
	// that: walhook answers 409 at the next provisioning, and the application takes what is there.
	pool, err = pgxpool.New(ctx, readFile(t, dir, "database_url"))
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `UPDATE hostapp.companies SET walhook_id = NULL`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE hostapp.users SET walhook_member_id = NULL`)
	require.NoError(t, err)
	settingsLink(t, origin+"/companies/"+companyID+"/settings")
	var walhookID string
	var memberID int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT c.walhook_id, u.walhook_member_id FROM hostapp.companies c JOIN hostapp.users u ON u.company_id = c.id WHERE u.email = 'hank@globex.test'`).Scan(&walhookID, &memberID))
	require.Equal(t, companyID, walhookID)
	require.Equal(t, members.JSON200.Items[0].Id, memberID)

	// docs/integration.md's platform API commands, verbatim but for the address, against the
	// same walhook: a company, its owner, a portal link.
	runDocs(t, filepath.Dir(dir), dev.addr)
}

// devHostappFlags is the walhook dev flags of the Makefile's dev-hostapp target, with the
// catalog's absolute path and the test application's origin for http://127.0.0.1:8090.
func devHostappFlags(t *testing.T, catalog, origin string) []string {
	t.Helper()
	b, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	_, recipe, ok := strings.Cut(string(b), "\ndev-hostapp:")
	require.True(t, ok, "the Makefile has dev-hostapp")
	_, recipe, _ = strings.Cut(recipe, "\n\t")
	recipe, _, _ = strings.Cut(recipe, "\n")
	_, args, ok := strings.Cut(recipe, "./cmd/walhook dev ")
	require.True(t, ok, "dev-hostapp runs walhook dev: %s", recipe)
	flags := strings.Fields(args)
	require.Equal(t, []string{"--catalog", "examples/hostapp/catalog.yaml", "--frame-ancestors", "http://127.0.0.1:8090"}, flags)
	return []string{"--catalog", catalog, "--frame-ancestors", origin}
}

// runDocs runs the shell commands of docs/integration.md's sections 3 and 4 (the curl lines and
// the PT= line, continuation lines joined) from root, where ./.walhook is, against addr. The
// member id the owner's creation answers stands in for <member id>.
func runDocs(t *testing.T, root, addr string) {
	t.Helper()
	var lines []string
	for _, l := range xtest.DocCommands(t, "../../docs/integration.md", "\n## 3. ", "\n## 5. ", "curl ", "PT=") {
		lines = append(lines, strings.ReplaceAll(l, "localhost:8080", addr))
	}
	require.Len(t, lines, 4, "PT=, the company, its owner, the portal link:\n%s", strings.Join(lines, "\n"))
	require.True(t, strings.HasPrefix(lines[0], "PT=$(cat .walhook/platform_token)"))
	sh := func(line string) []byte {
		cmd := exec.Command("sh", "-c", lines[0]+" && "+line)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", line, out)
		return out
	}
	var company, member map[string]any
	require.NoError(t, json.Unmarshal(sh(lines[1]), &company))
	require.Equal(t, "42", company["id"])
	require.Equal(t, "Globex", company["name"])
	require.NoError(t, json.Unmarshal(sh(lines[2]), &member))
	require.Equal(t, "hank@globex.test", member["email"])
	id, ok := member["id"].(float64)
	require.True(t, ok, "the member's id: %v", member)
	var link map[string]any
	require.NoError(t, json.Unmarshal(sh(strings.ReplaceAll(lines[3], "<member id>", strconv.FormatFloat(id, 'f', 0, 64))), &link))
	require.Contains(t, link["url"], "http://"+addr+"/#login=whl_")
}

// dev is a running `walhook dev`.
type dev struct {
	addr string
	p    *xtest.Proc
}

// startDev runs `walhook dev` on dir and a free port with extra flags, until stop or the test's
// end (SIGTERM, so that its PostgreSQL stops too).
func startDev(t *testing.T, dir string, extra ...string) *dev {
	t.Helper()
	p := xtest.Start(t, nil, append([]string{"dev", "--dir", dir, "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn"}, extra...)...)
	p.StopAtEnd(t, time.Minute)
	return &dev{p: p, addr: p.WaitLog(t, adminLine, 90*time.Second)[1]}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *dev) stop(t *testing.T) {
	t.Helper()
	require.Zero(t, d.p.Stop(t, time.Minute), "walhook dev exits 0 on SIGTERM")
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// page is an answer of the application, after redirects.
type page struct {
	status int
	path   string // of the last request
	body   string
}

// post submits a form as a browser does, following the redirect, and answers the last response.
func post(t *testing.T, u string, form url.Values) page {
	t.Helper()
	resp, err := http.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return page{status: resp.StatusCode, path: resp.Request.URL.Path, body: string(b)}
}

// settingsLink opens the settings screen and answers its iframe's src.
func settingsLink(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "a single-use link is not cached")
	m := iframeSrc.FindSubmatch(b)
	require.NotNil(t, m, "the settings screen has walhook's iframe:\n%s", b)
	return html.UnescapeString(string(m[1]))
}

// envelope is the part of a delivered event the test reads.
type envelope struct {
	path      string         // where it was sent
	Type      string         `json:"type"`
	CompanyID string         `json:"company_id"`
	Data      map[string]any `json:"data"`
}

// receiver is the company's webhook endpoints (url/<event>): it verifies each request with the
// stock Standard Webhooks library and the secret of the webhook of its path, and keeps the
// envelopes that verify.
type receiver struct {
	url string
	mu  sync.Mutex
	wh  map[string]*standardwebhooks.Webhook // by path
	got chan envelope
	bad chan error
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{wh: map[string]*standardwebhooks.Webhook{}, got: make(chan envelope, 10), bad: make(chan error, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rc.mu.Lock()
		wh := rc.wh[r.URL.Path]
		rc.mu.Unlock()
		if err == nil && wh == nil {
			err = errors.New("no webhook at " + r.URL.Path)
		}
		if err == nil {
			err = wh.Verify(payload, r.Header)
		}
		e := envelope{path: r.URL.Path}
		if err == nil {
			err = json.Unmarshal(payload, &e)
		}
		if err != nil {
			rc.bad <- err
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		rc.got <- e
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hooks"
	return rc
}

func (rc *receiver) setSecret(t *testing.T, path, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	rc.mu.Lock()
	rc.wh[path] = wh
	rc.mu.Unlock()
}

// wait answers the first verified envelope, failing on one that does not verify or after a minute.
func (rc *receiver) wait(t *testing.T) envelope {
	t.Helper()
	select {
	case e := <-rc.got:
		return e
	case err := <-rc.bad:
		t.Fatalf("a request that does not verify: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no delivery within a minute")
	}
	return envelope{}
}

// lockedBuffer is the application's standard output, written by run and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
