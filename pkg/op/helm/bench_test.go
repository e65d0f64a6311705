package helm

import "testing"

// Rendering a small chart whose archive and index are cached: what a step
// evaluated again pays for a HELM component.
func BenchmarkRenderWarm(b *testing.B) {
	repo := serveRepo(b, web("1.0.0"))
	f := New(Options{})
	p := &Params{Chart: "web", Repo: repo.URL, Version: "1.0.0", Release: "shop", Namespace: "apps",
		Values: map[string]any{"abmRolloutPartition": int64(1)}}
	if _, err := run(f, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := run(f, p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := repo.total(); n != 2 {
		b.Errorf("%d requests, want 2 (index and archive, once)", n)
	}
}
