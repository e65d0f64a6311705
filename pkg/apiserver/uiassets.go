package apiserver

import (
	"bytes"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The UI's single-page app (Options.UI, the binary's web.Dist()): every
// GET or HEAD of a path that is not the API's (apiPrefixes) is the app. A
// file the app has is served as it is: under /assets/ (Vite's hashed
// names, which change with their content) cached for a year and
// immutable, anything else revalidated on each use. Any other path is
// index.html, uncached, so a deep link such as /runs/NS/NAME/steps/STEP
// opens the app, which routes it.

// apiPrefixes are the paths the single-page app never answers: each
// path, and what is under it; "/openapi" any path it begins (/openapi*).
var apiPrefixes = []string{"/ui/api", "/workflow", "/ws", "/healthz", "/readyz", "/metrics", "/openapi"}

// spa serves r from the single-page app and reports true, or reports
// false when r is not the app's (the caller answers 404).
func (s *server) spa(w http.ResponseWriter, r *http.Request) bool {
	if s.o.UI == nil || r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range apiPrefixes {
		if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") || p == "/openapi" && strings.HasPrefix(r.URL.Path, p) {
			return false
		}
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if fi, err := fs.Stat(s.o.UI, name); name != "" && name != "index.html" && err == nil && !fi.IsDir() {
		b, err := fs.ReadFile(s.o.UI, name)
		if err != nil {
			uiFail(w, r, errorf(http.StatusInternalServerError, "reading UI file %s: %v", name, err))
			return true
		}
		if strings.HasPrefix(name, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
		return true
	}
	if strings.HasPrefix(name, "assets/") {
		// A missing asset is a 404, not the app: a page asking for an
		// old bundle must not get HTML for its script.
		uiFail(w, r, errorf(http.StatusNotFound, "no UI asset %s", name))
		return true
	}
	b, err := fs.ReadFile(s.o.UI, "index.html")
	if err != nil {
		uiFail(w, r, errorf(http.StatusInternalServerError, "the UI has no index.html: %v", err))
		return true
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(b))
	return true
}
