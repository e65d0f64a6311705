package http

import (
	"context"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// A POST recorded in the journal is not replayed for a DELETE that now
// sits at the same path (the definition was edited mid-attempt): both are
// http.do, but they are different effects. The DELETE fails for good and
// is not sent; the POST again is replayed, not sent.
func TestJournalTellsMethodsApart(t *testing.T) {
	s := serve(t, nil)
	f := New(Options{})
	j, err := journal.Open(context.Background(), journal.NewMemory(), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := j.Runner(op.Direct)
	post := newCall(f, &Params{Method: "POST", URL: s.URL})
	for i := 0; i < 2; i++ {
		if _, err := r.Run(context.Background(), post); err != nil {
			t.Fatal(err)
		}
	}
	if hits, _ := s.saw(); hits != 1 {
		t.Fatalf("POST evaluated twice reached the server %d times, want 1", hits)
	}
	del := newCall(f, &Params{Method: "DELETE", URL: s.URL})
	_, err = r.Run(context.Background(), del)
	if err == nil || !op.IsPermanent(err) {
		t.Fatalf("DELETE at the POST's path: %v; want a permanent error", err)
	}
	for _, want := range []string{"http.do POST", "http.do DELETE", `path "notify.do"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if hits, last := s.saw(); hits != 1 || last.Method != "POST" {
		t.Errorf("server saw %d requests, the last a %s; want the one POST", hits, last.Method)
	}
}
