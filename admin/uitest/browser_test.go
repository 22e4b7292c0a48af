package uitest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

// screens, when set, writes the screenshots to docs/screens (go test ./admin/uitest -screens);
// otherwise they go to a temporary directory, so a test run leaves the checkout clean.
var screens = flag.Bool("screens", false, "write the screenshots to docs/screens")

const chromiumPath = "/usr/bin/chromium"

// requireChromium finds Debian's Chromium: a missing browser fails in CI (CI=true) and skips
// elsewhere.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("browser tests need Chromium at %s (`make browser-deps` installs it): %v", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func TestMain(m *testing.M) { xtest.Main(m) }

var (
	adminLine = regexp.MustCompile(`Admin API\s+http://([0-9.:]+)/v1`)
	linkLine  = regexp.MustCompile(`Web page\s+(http://\S+/#login=\S+)`)
)

// dev is a running `walhook dev`.
type dev struct {
	dir, addr, link, dbURL, token string
}

// startDev runs `walhook dev` on a fresh directory and a free port, with any extra flags; it is
// stopped with SIGTERM (and must exit 0) when the test ends.
func startDev(t *testing.T, flags ...string) *dev {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".walhook")
	p := xtest.Start(t, nil, append([]string{"dev", "--dir", dir, "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn"}, flags...)...)
	p.StopAtEnd(t, time.Minute)
	d := &dev{dir: dir}
	d.addr = p.WaitLog(t, adminLine, 90*time.Second)[1]
	d.link = p.WaitLog(t, linkLine, 10*time.Second)[1]
	b, err := os.ReadFile(filepath.Join(dir, "database_url"))
	require.NoError(t, err)
	d.dbURL = strings.TrimSpace(string(b))
	b, err = os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)
	d.token = strings.TrimSpace(string(b))
	return d
}

// request calls the dev admin API (path below /v1) with the dev owner's token, sending body as
// JSON unless it is nil, and returns the status and the decoded JSON answer (nil when empty).
func (d *dev) request(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+d.addr+"/v1"+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out), "%s %s: %s", method, path, b)
	}
	return res.StatusCode, out
}

// api is request for a call that must succeed: it fails the test on any status above 299.
func (d *dev) api(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	status, out := d.request(t, method, path, body)
	require.Less(t, status, 300, "%s %s: %v", method, path, out)
	return out
}

// cli runs a walhook bootstrap command against the dev database and returns its output.
func (d *dev) cli(t *testing.T, args ...string) string {
	t.Helper()
	code, out := xtest.Run(t, []string{"WALHOOK_DATABASE_URL=" + d.dbURL}, args...)
	require.Zero(t, code, "walhook %v: %s", args, out)
	return strings.TrimSpace(out)
}

// psql runs SQL on the dev database with its own psql.
func (d *dev) psql(t *testing.T, sql string) {
	t.Helper()
	out, err := exec.Command(d.psqlPath(t), "-X", "-v", "ON_ERROR_STOP=1", "-d", d.dbURL, "-c", sql).CombinedOutput()
	require.NoError(t, err, "psql: %s", out)
}

func (d *dev) psqlPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
	require.NotEmpty(t, m, "psql not found")
	return m[len(m)-1]
}

// received is one request the test receiver got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// receiver is a real HTTP endpoint for webhooks; it answers 200 and records every request.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)})
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// waitFor waits until n requests whose body contains substr have arrived, and returns them.
func (rc *receiver) waitFor(t *testing.T, substr string, n int, within time.Duration) []received {
	t.Helper()
	var got []received
	require.Eventually(t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		got = got[:0]
		for _, r := range rc.reqs {
			if strings.Contains(r.Body, substr) {
				got = append(got, r)
			}
		}
		return len(got) >= n
	}, within, 100*time.Millisecond, "the receiver got %d request(s) carrying %q, want %d", len(got), substr, n)
	return got
}

// browser is one headless Chromium tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	return openBrowser(t, base, t.TempDir())
}

// openBrowser starts Chromium on a profile directory the caller may have prepared (its
// Default/Preferences are the browser's settings).
func openBrowser(t *testing.T, base, profile string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1366, 768),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	_, err := chromedp.Run(ctx, chromedp.EmulateViewport(1366, 768))
	require.NoError(t, err, "start Chromium")
	dir := t.TempDir()
	if *screens {
		dir = filepath.Join("..", "..", "docs", "screens")
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	return &browser{t: t, ctx: ctx, base: base, dir: dir}
}

// do runs actions with a deadline, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...), what)
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func (b *browser) visible(sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(sel))); err != nil {
		b.failureShot()
		require.NoError(b.t, err, "wait for %s", sel)
	}
}
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.WaitVisible(css(sel)), chromedp.Click(css(sel), chromedp.NodeVisible))
}

// fill replaces an input's text by typing, so the page sees real input events.
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	b.visible(sel)
	// Emptied by script: chromedp.Clear leaves a number input's value in place, so typing appended.
	b.eval(fmt.Sprintf(`document.querySelector(%q).value = ''`, sel))
	b.do("fill "+sel, chromedp.SendKeys(css(sel), text))
}

// fillOAuth fills the open OAuth form's name, token URL, client id and client secret.
func (b *browser) fillOAuth(name, tokenURL, clientID, clientSecret string) {
	b.t.Helper()
	b.fill(`#oauth-form input[name=name]`, name)
	b.fill(`#oauth-form input[name=token_url]`, tokenURL)
	b.fill(`#oauth-form input[name=client_id]`, clientID)
	b.fill(`#oauth-form input[name=client_secret]`, clientSecret)
}

// choose picks a select's option by value and fires change, as a user's pick does.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	b.visible(sel)
	ok := b.eval(fmt.Sprintf(`(() => { const s = document.querySelector(%q); if (![...s.options].some(o => o.value === %q)) return false;
		s.value = %q; s.dispatchEvent(new Event('input', {bubbles: true})); s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, sel, value, value))
	require.Equal(b.t, true, ok, "option %q of %s", value, sel)
}

func (b *browser) eval(js string) any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
	require.NoError(b.t, err, "evaluate %s", js)
	return v
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel), chromedp.NodeVisible))
	require.NoError(b.t, err, "text of %s", sel)
	return s
}

// until waits for a JavaScript condition to hold.
func (b *browser) until(what, js string, within time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, within+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		b.failureShot()
	}
	require.NoError(b.t, err, "waiting for %s (%s)", what, js)
}

// failureShot saves what the page showed when a wait failed, and logs where.
func (b *browser) failureShot() {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return
	}
	f, err := os.CreateTemp("", "walhook-uitest-failure-*.png")
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Write(png); err == nil {
		b.t.Logf("the page at the failure: %s", f.Name())
	}
}

func (b *browser) absent(sel string) {
	b.t.Helper()
	require.Equal(b.t, true, b.eval(fmt.Sprintf(`document.querySelector(%q) === null`, sel)), "%s must not be on the page", sel)
}

func (b *browser) open(hash string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`location.hash = %q`, hash))
}

// shot saves a PNG of the viewport (or of the whole page when full) as name.png.
func (b *browser) shot(name string, full bool) {
	b.t.Helper()
	// Let the toast, if any, go and the layout settle so the picture shows the screen itself.
	b.eval(`document.getElementById('toast').textContent = ''`)
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	var png []byte
	var err error
	if full {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	require.NoError(b.t, err, "screenshot %s", name)
	require.True(b.t, len(png) > 8 && string(png[1:4]) == "PNG", "screenshot %s is a PNG", name)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644))
}

func jsonBody(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m), "body %s", s)
	return m
}
