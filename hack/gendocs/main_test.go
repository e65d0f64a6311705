package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed docs are what the generator writes from today's stdlib,
// op registry and definitions: a changed op schema, class or definition
// parameter without `make docs` fails here (and so make test).
func TestDocsAreGenerated(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatalf("%s: %v (run make docs)", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make docs and commit the result", name)
		}
	}
}

// What a newcomer looks the reference up for is there, with the class the
// registry gives: an op of every package, an HTTP call's class by its
// method, and each shipped step type's parameters.
func TestGeneratedContent(t *testing.T) {
	files, err := generate(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ops, defs := string(files[opsFile]), string(files[definitionsFile])
	for _, want := range []string{
		"| [`http.#HTTPPost`](#httphttppost) | `http.do` | **replayed** for POST (depends on parameters) |",
		"| [`http.#HTTPGet`](#httphttpget) | `http.do` | re-run for GET (depends on parameters) |",
		"| [`kube.#Apply`](#kubeapply) | `kube.apply` | re-run |",
		"| [`kube.#Delete`](#kubedelete) | `kube.delete` | **replayed** |",
		"| [`builtin.#Terminate`](#builtinterminate) | `builtin.terminate` | control |",
		"| [`op.#HTTPPost`](#ophttppost) | `http.do` | **replayed** for POST (depends on parameters) |",
		"| method | \"GET\" \\| \"POST\" \\| \"PUT\" \\| \"PATCH\" \\| \"DELETE\" \\| \"HEAD\" | no | `\"GET\"` |  |",
		"Results are filled into the call's fields: `err` receives `$returns.err`, `value` receives `$returns.value`.",
	} {
		if !strings.Contains(ops, want) {
			t.Errorf("docs/ops.md lacks %q", want)
		}
	}
	cues, err := filepath.Glob(filepath.Join("..", "..", "definitions", "*.cue"))
	if err != nil || len(cues) == 0 {
		t.Fatalf("no definitions: %v", err)
	}
	for _, c := range cues {
		name := strings.TrimSuffix(filepath.Base(c), ".cue")
		if !strings.Contains(defs, "\n## "+name+"\n") {
			t.Errorf("docs/definitions.md has no section for %s", name)
		}
	}
	if !strings.Contains(defs, "| url | string | yes |") {
		t.Errorf("docs/definitions.md lacks request's url parameter")
	}
}
