// Package web holds the UI's built single-page app, embedded in the
// binary: dist is what `make ui` builds (Vite). Nothing under dist is
// committed but dist/.keep, so building the UI never dirties the tree; a
// binary built before `make ui` serves placeholder/index.html, a page
// saying how to build the UI, so `go build ./...` never needs Node.
// pkg/apiserver serves whatever Dist returns (Options.UI).
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist placeholder
var files embed.FS

// Dist is the built app: index.html at its root, hashed assets under
// assets/; the placeholder page when the UI was not built.
func Dist() fs.FS {
	dir := "dist"
	if !Built() {
		dir = "placeholder"
	}
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // a valid path: fs.Sub cannot fail on it
	}
	return sub
}

// Built says whether the binary embeds the app `make ui` built, not the
// placeholder.
func Built() bool {
	_, err := fs.Stat(files, "dist/index.html")
	return err == nil
}
