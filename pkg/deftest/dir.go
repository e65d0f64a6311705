package deftest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// Suite is a definition and the files of its cases.
type Suite struct {
	// Name is the definition's name: its file name without .cue.
	Name string
	// File is the definition, DIR/NAME.cue.
	File string
	// Cases are DIR/testdata/NAME/*.txtar, sorted.
	Cases []string
}

// Find returns the suites of path: one per NAME.cue of a directory, or the
// one of a .cue file, with the cases under testdata/NAME beside it. A
// testdata/NAME directory without NAME.cue is an error, so cases are never
// left unrun without a word.
func Find(path string) ([]Suite, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if filepath.Ext(path) != ".cue" {
			return nil, fmt.Errorf("%s: want a directory or a .cue definition", path)
		}
		s, err := suiteOf(filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".cue"))
		if err != nil {
			return nil, err
		}
		return []Suite{s}, nil
	}
	defs, err := filepath.Glob(filepath.Join(path, "*.cue"))
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	var out []Suite
	for _, d := range defs {
		name := strings.TrimSuffix(filepath.Base(d), ".cue")
		names[name] = true
		s, err := suiteOf(path, name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	dirs, err := os.ReadDir(filepath.Join(path, "testdata"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, d := range dirs {
		if d.IsDir() && !names[d.Name()] {
			return nil, fmt.Errorf("%s: cases for a definition %s does not have (no %s.cue)",
				filepath.Join(path, "testdata", d.Name()), path, d.Name())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no definitions (NAME.cue, with cases in testdata/NAME/*.txtar)", path)
	}
	return out, nil
}

func suiteOf(dir, name string) (Suite, error) {
	cases, err := filepath.Glob(filepath.Join(dir, "testdata", name, "*.txtar"))
	if err != nil {
		return Suite{}, err
	}
	sort.Strings(cases)
	return Suite{Name: name, File: filepath.Join(dir, name+".cue"), Cases: cases}, nil
}

// Definition reads the suite's definition, which must be named as its
// file is.
func (s Suite) Definition() (eval.Definition, error) {
	src, err := definition.FromFile(s.File)
	if err != nil {
		return eval.Definition{}, err
	}
	if src.Name != s.Name {
		return eval.Definition{}, fmt.Errorf("%s names itself %q: its cases are under testdata/%s, so name it %q", s.File, src.Name, s.Name, s.Name)
	}
	return src.Definition, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
