// Package stdlib holds the CUE schemas of the ops, the single source of truth
// for their parameters and results, embedded into the binary. Templates
// import them as "vela/kube", "vela/http", "vela/builtin", "vela/util",
// "vela/component", "vela/helm", "vela/email", "vela/metrics", "vela/config",
// "vela/query", "vela/multicluster" (ops that take $params and fill
// $returns), "vela/op" (the flat dialect of the same ops, and KubeVela's
// application ops) and "vela/ql" (the flat dialect of vela/query).
package stdlib

import (
	"embed"
	"io/fs"
	"path"
	"sort"
)

//go:embed vela
var files embed.FS

// File is one CUE source file of a package.
type File struct {
	Name   string
	Source []byte
}

// Packages returns the import path and files of every stdlib package.
func Packages() (map[string][]File, error) {
	out := map[string][]File{}
	err := fs.WalkDir(files, "vela", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".cue" {
			return err
		}
		src, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		dir := path.Dir(p)
		out[dir] = append(out[dir], File{Name: p, Source: src})
		return nil
	})
	for _, fs := range out {
		sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	}
	return out, err
}
