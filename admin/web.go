package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

// webAssets is the web page: static HTML, CSS and JavaScript modules with no build step, embedded
// in the binary so nothing is installed or generated at run time. The page talks to the /v1 API
// with the member's token, which it keeps in sessionStorage.
//
//go:embed web/*.html web/*.css web/*.js
var webAssets embed.FS

// webCSP keeps the page to its own scripts and styles and the API of its own origin: no inline
// script, no third-party resource, no framing.
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// mountWeb serves the page: GET / is index.html and GET /ui/… the assets. Only these paths are
// taken, so unknown /v1 paths still answer the API's 404.
func (s *Server) mountWeb() {
	sub, err := fs.Sub(webAssets, "web")
	if err != nil { // the embed pattern names the directory, so this cannot happen at run time
		panic("admin: web assets: " + err.Error())
	}
	assets := http.StripPrefix("/ui/", http.FileServerFS(sub))
	s.mux.Handle("GET /ui/", webHeaders(assets))
	s.mux.Handle("GET /{$}", webHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})))
}

// webHeaders sets the security and caching headers of every page asset. Assets are revalidated
// on each load (no-cache): they are small and change with the binary.
func webHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", webCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
