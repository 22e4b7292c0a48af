package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestWebPageServed checks the embedded page: / is index.html, /ui/… are the assets with their
// types, every answer carries the security headers, and the page leaves the API's paths alone.
func TestWebPageServed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Config{API: true}, nil, nil, zerolog.Nop(), prometheus.NewRegistry()).Handler())
	defer srv.Close()
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	get := func(path string) (answer, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return answer{resp.StatusCode, resp.Header}, string(b)
	}

	resp, body := get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, body, `<script type="module" src="/ui/app.js">`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))

	for path, ctype := range map[string]string{
		"/ui/app.js": "javascript", "/ui/api.js": "javascript", "/ui/dom.js": "javascript", "/ui/form.js": "javascript",
		"/ui/webhooks.js": "javascript", "/ui/webhook-form.js": "javascript", "/ui/oauth.js": "javascript",
		"/ui/history.js": "javascript", "/ui/permissions.js": "javascript", "/ui/style.css": "text/css",
	} {
		resp, body := get(path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Type"), ctype, path)
		require.NotEmpty(t, body, path)
		require.NotEmpty(t, resp.Header.Get("Content-Security-Policy"), path)
	}

	// Every module the page imports is embedded.
	_, app := get("/ui/app.js")
	for _, line := range strings.Split(app, "\n") {
		if i := strings.Index(line, "from './"); i >= 0 {
			name := strings.TrimSuffix(strings.TrimSpace(line[i+len("from './"):]), "';")
			resp, _ := get("/ui/" + name)
			require.Equal(t, http.StatusOK, resp.StatusCode, name)
		}
	}

	resp, _ = get("/ui/nope.js")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, body = get("/v1/nope")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.NotContains(t, body, "<html", "unknown API paths are not answered by the page")
}

// TestWebMask keeps the page's and the OpenAPI document's mask equal to the API's (webhook.Mask):
// the page recognises a stored secret by it and sends it back to keep the stored value.
func TestWebMask(t *testing.T) {
	t.Parallel()
	dom, err := webAssets.ReadFile("web/dom.js")
	require.NoError(t, err)
	require.Contains(t, string(dom), "export const MASK = '"+webhook.Mask+"';")
	for _, f := range []string{"web/oauth.js", "web/webhook-form.js", "web/history.js", "web/webhooks.js", "web/app.js"} {
		js, err := webAssets.ReadFile(f)
		require.NoError(t, err)
		require.NotContains(t, string(js), webhook.Mask, "%s spells the mask itself instead of importing MASK", f)
	}
	// The OpenAPI document (and so the generated client's comments) spells it as the API answers.
	runs := regexp.MustCompile(`•+|\*{4,}`).FindAllString(string(openAPI), -1)
	require.NotEmpty(t, runs)
	for _, r := range runs {
		require.Equal(t, webhook.Mask, r, "admin/openapi.yaml names a mask other than webhook.Mask")
	}
}
