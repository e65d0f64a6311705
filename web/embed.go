// Package web holds the UI's built single-page app, embedded in the
// binary: dist is what `make ui` builds (Vite). A clean clone has a
// placeholder dist/index.html committed, so `go build ./...` never needs
// Node; pkg/apiserver serves whatever dist holds (Options.UI).
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built app: index.html at its root, hashed assets under
// assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: fs.Sub cannot fail on it
	}
	return sub
}
