package eval

import (
	"fmt"
	"runtime"
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

// The compile cache keeps the templates used most recently.
func TestCompileCacheEvictsLeastRecentlyUsed(t *testing.T) {
	tests := []struct {
		compiles string // one definition name per letter, compiled in order
		want     string // the names cached afterwards, most recent first
	}{
		{"a", "a"},
		{"ab", "ba"},
		{"abc", "cb"},
		{"abac", "ca"},
		{"abbbc", "cb"},
		{"abcab", "ba"},
		{"aaaa", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.compiles, func(t *testing.T) {
			e, err := New(Options{Ops: op.NewRegistry(), CacheSize: 2, Shards: 1})
			if err != nil {
				t.Fatal(err)
			}
			sh := e.shards[0].Load()
			for _, name := range tt.compiles {
				if _, err := sh.compile(Definition{Name: string(name), Template: "x: 1\n"}); err != nil {
					t.Fatal(err)
				}
			}
			got := ""
			for el := sh.lru.Front(); el != nil; el = el.Next() {
				got += cachedName(t, sh, el.Value.(*compiled).key)
			}
			if got != tt.want || len(sh.cache) != len(tt.want) {
				t.Errorf("cached %q (%d in the map), want %q", got, len(sh.cache), tt.want)
			}
		})
	}
}

func cachedName(t *testing.T, sh *shard, key [32]byte) string {
	t.Helper()
	for _, name := range []string{"a", "b", "c"} {
		if key == (Definition{Name: name, Template: "x: 1\n"}).cacheKey() {
			return name
		}
	}
	t.Fatalf("unknown key in the cache")
	return ""
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A CUE context keeps everything it compiled, evicted or not: the memory of
// evicted templates comes back only with their context. Compiling ever new
// templates (definitions edited again and again) must not grow the heap.
func TestEvictedTemplatesReleaseTheirMemory(t *testing.T) {
	const cacheSize = 8
	e, err := New(Options{Ops: op.NewRegistry(), CacheSize: cacheSize, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int) {
		def := Definition{Name: "edited", Template: fmt.Sprintf("import \"vela/op\"\n\nwait: op.#Suspend\nrevision: %d\nspec: {replicas: revision + 1, ports: [80, 443]}\n", i)}
		if err := e.Check(def); err != nil {
			t.Fatal(err)
		}
		if sh := e.shards[0].Load(); sh.builds > 2*cacheSize {
			t.Fatalf("the shard's context holds %d compiled templates, want at most %d", sh.builds, 2*cacheSize)
		}
	}
	for i := 0; i < 200; i++ {
		check(i)
	}
	before := heapInUse()
	const more = 1500
	for i := 200; i < 200+more; i++ {
		check(i)
	}
	after := heapInUse()
	runtime.KeepAlive(e) // what e holds must count
	growth := int64(after) - int64(before)
	t.Logf("heap %d KiB after 200 templates, %d KiB after %d more (cache of %d)", before/1024, after/1024, more, cacheSize)
	// Kept by the context, each of these templates costs several KiB: the
	// growth would be over 10 MiB.
	if growth > 2<<20 {
		t.Errorf("the heap grew by %d KiB compiling %d templates through a cache of %d", growth/1024, more, cacheSize)
	}
}
