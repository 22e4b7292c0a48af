package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

// webAssets is the web page: static HTML, CSS and JavaScript modules with no build step, embedded
// in the binary so nothing is installed or generated at run time. The page talks to the /v1 API
// with the member's token, which it keeps in sessionStorage (in memory when the browser refuses
// storage to a framed page: api.js).
//
//go:embed web/*.html web/*.css web/*.js
var webAssets embed.FS

// webCSP keeps the page to its own scripts and styles and the API of its own origin: no inline
// script, no third-party resource. The frame-ancestors directive is appended per server: 'none',
// or the host application's origins (frame.go).
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors "

// mountWeb serves the page: GET / is index.html and GET /ui/… the assets. Only these paths are
// taken, so unknown /v1 paths still answer the API's 404.
func (s *Server) mountWeb() {
	sub, err := fs.Sub(webAssets, "web")
	if err != nil { // the embed pattern names the directory, so this cannot happen at run time
		panic("admin: web assets: " + err.Error())
	}
	assets := http.StripPrefix("/ui/", http.FileServerFS(sub))
	webHeaders := webHeaders(s.cfg.FrameAncestors)
	s.mux.Handle("GET /ui/", webHeaders(assets))
	s.mux.Handle("GET /{$}", webHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})))
}

// webHeaders sets the security and caching headers of every page asset. Assets are revalidated
// on each load (no-cache): they are small and change with the binary.
//
// Framing follows frameAncestors (checked origins, frame.go): none, and the page is refused in
// any frame, by CSP and by X-Frame-Options DENY for browsers that predate frame-ancestors; or the
// listed origins only, by CSP alone. X-Frame-Options is then left out, because it cannot name an
// origin (ALLOW-FROM is gone from browsers) and DENY would contradict the list: browsers that
// know frame-ancestors ignore it, and older ones would refuse the host application too.
func webHeaders(frameAncestors []string) func(http.Handler) http.Handler {
	csp := webCSP + frameAncestorsSource(frameAncestors)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			if len(frameAncestors) == 0 {
				h.Set("X-Frame-Options", "DENY")
			}
			h.Set("Cache-Control", "no-cache")
			next.ServeHTTP(w, r)
		})
	}
}
