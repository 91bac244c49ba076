package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// static holds the dashboard: plain HTML, CSS and JavaScript, no build step.
//
//go:embed static
var static embed.FS

// contentSecurityPolicy allows the page only its own scripts, styles and
// connections: no inline script, nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// staticFiles is static with the "static/" prefix removed.
func staticFiles() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// dashboardHandler serves GET /: the dashboard page. The page holds no data;
// its script reads the API, so it is served without a token.
func dashboardHandler() http.Handler {
	files := staticFiles()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "index.html")
	})
}

// staticHandler serves GET /static/...: the page's script and style sheet.
// They are revalidated on every load (no-cache), so an upgrade is seen at
// once.
func staticHandler() http.Handler {
	fileServer := http.StripPrefix("/static/", http.FileServerFS(staticFiles()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		w.Header().Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, "/") {
			writeError(w, http.StatusNotFound, "no file "+r.URL.Path)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
