package uitest

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

// hostApp is a stand-in for the host application: its settings screen shows the page given in
// ?src= in an iframe, as an application embedding walhook does with a portal link.
func hostApp(t *testing.T) (srv *httptest.Server, port string) {
	t.Helper()
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme CRM · Settings</title></head>
<body style="margin:0;font-family:sans-serif"><header style="padding:8px 16px;background:#222;color:#fff">Acme CRM · Settings</header>
<iframe id="walhook" title="Webhooks" src="%s" style="display:block;width:1366px;height:700px;border:0"></iframe></body></html>`,
			html.EscapeString(r.URL.Query().Get("src")))
	}))
	t.Cleanup(srv.Close)
	_, port, _ = strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	return srv, port
}

// hostURL is the host application's settings screen on http://localhost:port framing src. The
// test's walhook runs on 127.0.0.1: another site to the browser, so the frame is a third-party
// frame (its own process, storage partitioned or refused), as it is in production.
func hostURL(port, src string) string {
	return "http://localhost:" + port + "/settings?src=" + url.QueryEscape(src)
}

// frame waits for the cross-site iframe whose URL starts with prefix and returns a browser driving
// it (Chromium runs it as a target of its own; chromedp attaches to it by id).
func (b *browser) frame(prefix string) *browser {
	b.t.Helper()
	var id target.ID
	require.Eventually(b.t, func() bool {
		infos, err := chromedp.Targets(b.ctx)
		if err != nil {
			return false
		}
		for _, info := range infos {
			if info.Type == "iframe" && strings.HasPrefix(info.URL, prefix) {
				id = info.TargetID
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "an iframe showing %s", prefix)
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(id))
	b.t.Cleanup(cancel)
	// Attach with the context itself: the attachment lives as long as the context of the first
	// Run, so it must not be one of the per-action timeouts.
	require.NoError(b.t, chromedp.Do(ctx), "attach to the iframe")
	return &browser{t: b.t, ctx: ctx, base: b.base, dir: b.dir}
}

// TestEmbeddedPage runs the web page inside a host application's settings screen on another site
// (walhook dev with --frame-ancestors naming it): the one-time sign-in link opened in the iframe
// signs in, the Webhooks listing shows, and a webhook created through the form in the frame
// receives a delivery; with storage refused to the frame the page still signs in. An origin not
// in --frame-ancestors, and a walhook started without the flag, are refused the frame.
func TestEmbeddedPage(t *testing.T) {
	requireChromium(t)
	_, hostPort := hostApp(t)
	_, otherPort := hostApp(t) // the same page on an origin the operator did not list
	d := startDev(t, "--frame-ancestors", "http://localhost:"+hostPort)
	rc := newReceiver(t)
	base := "http://" + d.addr

	b := newBrowser(t, base)

	// The host application's settings screen opens the sign-in link in its iframe.
	b.do("open the host application", chromedp.Navigate(hostURL(hostPort, d.link)))
	f := b.frame(base + "/")
	f.visible("#add-webhook")
	require.Equal(t, "Webhooks", f.text("main h1"))
	require.NotContains(t, f.eval(`location.href`), "login=", "the code leaves the frame's address")
	// The token is in the frame's own (partitioned) sessionStorage, never in a cookie.
	require.Equal(t, true, f.eval(`sessionStorage.getItem('walhook.token').startsWith('whk_') && document.cookie === ''`))
	f.visible("#webhooks-empty")

	// A webhook made through the form in the frame, then listed, then delivered to.
	hook := rc.srv.URL + "/hooks/embedded"
	f.click("#add-webhook")
	f.visible("#webhook-form")
	f.fill("#f-name", "From the settings screen")
	f.fill("#f-url", hook)
	f.choose("#f-method", "POST")
	f.visible(`#f-events input[value="contact.created"]:checked`)
	f.click("#f-active")
	f.click("#save")
	f.visible("#webhooks")
	id, ok := f.eval(rowID("#webhooks", "From the settings screen")).(string)
	require.True(t, ok, "the new webhook is listed")
	require.Contains(t, f.text(fmt.Sprintf(`#webhooks tr[data-id="%s"]`, id)), hook)
	d.psql(t, `INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Katherine Johnson', 'katherine@example.com')`)
	got := rc.waitFor(t, "katherine@example.com", 1, 45*time.Second)
	require.Equal(t, "/hooks/embedded", got[0].Path)

	// A browser that refuses the frame storage (third-party storage blocked: reading
	// sessionStorage throws) still signs in: the token is kept in memory for the frame's life.
	f.eval(`Object.defineProperty(window, 'sessionStorage', {configurable: true, get() { throw new DOMException('Access is denied for this document.', 'SecurityError'); }}), true`)
	f.open("#login=whl_spent")
	f.until("the spent-link message in the frame", `(document.getElementById('signin-error')||{}).textContent?.includes('Open this screen again from your application')`, 10*time.Second)
	f.fill("#token", d.token)
	f.click("form button[type=submit]")
	f.visible("#add-webhook")
	require.Contains(t, f.text("#webhooks tbody"), "From the settings screen")

	// An origin that is not listed gets no page: the browser refuses the frame and shows its
	// error page instead.
	b.do("open an unlisted host", chromedp.Navigate(hostURL(otherPort, base+"/?from=unlisted")))
	b.frame(base + "/?from=unlisted").refused()

	// walhook without --frame-ancestors refuses every frame, the listed host's too.
	plain := "http://" + startAdmin(t, d) + "/"
	b.do("open the host application on a walhook without the flag", chromedp.Navigate(hostURL(hostPort, plain)))
	b.frame(plain).refused()
	b.do("open that walhook on its own", chromedp.Navigate(plain))
	b.visible("#token")
}

// refused waits until the frame shows the browser's error page, not walhook's.
func (b *browser) refused() {
	b.t.Helper()
	b.until("the browser's error page in the frame", `document.readyState === 'complete' && location.href.startsWith('chrome-error:')`, 10*time.Second)
	b.absent("#app")
}

// startAdmin runs `walhook admin` over the dev database with no --frame-ancestors, on a free
// port, and returns its address; it is stopped with SIGTERM (and must exit 0) when the test ends.
func startAdmin(t *testing.T, d *dev) string {
	t.Helper()
	keys, err := os.ReadFile(filepath.Join(d.dir, "encryption-keys"))
	require.NoError(t, err)
	p := xtest.Serve(t, []string{"WALHOOK_DATABASE_URL=" + d.dbURL, "WALHOOK_ENCRYPTION_KEYS=" + strings.TrimSpace(string(keys))}, "admin")
	p.StopAtEnd(t, 30*time.Second)
	return p.Addr()
}
