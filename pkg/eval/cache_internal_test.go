package eval

import (
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

func TestCompileIsCachedByContent(t *testing.T) {
	e, err := New(Options{Ops: op.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	sh := e.shards[0].Load()
	def := Definition{Name: "d", Template: "import \"vela/op\"\nx: op.#Suspend\n"}
	if _, err := sh.compile(def); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.compile(def); err != nil {
		t.Fatal(err)
	}
	if n := len(sh.cache); n != 1 {
		t.Fatalf("cache holds %d entries after compiling one template twice, want 1", n)
	}
	def.Template += "y: 1\n"
	if _, err := sh.compile(def); err != nil {
		t.Fatal(err)
	}
	if n := len(sh.cache); n != 2 {
		t.Fatalf("cache holds %d entries after a changed template, want 2", n)
	}
	bad := Definition{Name: "bad", Template: "x: {"}
	_, err1 := sh.compile(bad)
	_, err2 := sh.compile(bad)
	if err1 == nil || err2 == nil || len(sh.cache) != 3 {
		t.Fatalf("a compile error should be cached too: %v %v %d", err1, err2, len(sh.cache))
	}
}
