package journal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// TestTwoWriters: two journals of one run (the controller and the CLI),
// each opened before the other saved, never lose each other's records or
// variables.
func TestTwoWriters(t *testing.T) {
	ctx := context.Background()
	type step func(t *testing.T, a, b *journal.Journal)
	record := func(j *journal.Journal, key string) {
		t.Helper()
		if err := j.Record(ctx, key, journal.Entry{Message: key}); err != nil {
			t.Fatal(err)
		}
	}
	setVar := func(j *journal.Journal, k string, v any) {
		t.Helper()
		if err := j.SetVar(k, v); err != nil {
			t.Fatal(err)
		}
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name        string
		steps       []step
		wantEntries []string
		wantVars    map[string]any
		dropsSeed   bool
	}{{
		name: "a variable set over an effect record",
		steps: []step{
			func(t *testing.T, a, b *journal.Journal) { record(a, "s1/post") },
			func(t *testing.T, a, b *journal.Journal) { setVar(b, "approved", true) },
		},
		wantEntries: []string{"s1/post"},
		wantVars:    map[string]any{"approved": true},
	}, {
		name: "a record over a variable set",
		steps: []step{
			func(t *testing.T, a, b *journal.Journal) { setVar(b, "approved", true) },
			func(t *testing.T, a, b *journal.Journal) { record(a, "s1/post") },
		},
		wantEntries: []string{"s1/post"},
		wantVars:    map[string]any{"approved": true},
	}, {
		name: "both set variables: each keeps its own, the last writer wins a shared one",
		steps: []step{
			func(t *testing.T, a, b *journal.Journal) { setVar(a, "x", "a"); setVar(a, "both", "a") },
			func(t *testing.T, a, b *journal.Journal) { setVar(b, "y", "b"); setVar(b, "both", "b") },
		},
		wantVars: map[string]any{"x": "a", "y": "b", "both": "b"},
	}, {
		name: "drops go only with their writer's own keys",
		steps: []step{
			func(t *testing.T, a, b *journal.Journal) { record(a, "old/post") },
			func(t *testing.T, a, b *journal.Journal) {
				b.Retain(func(id string) bool { return id == "new" })
				record(b, "new/post")
			},
		},
		wantEntries: []string{"new/post", "old/post"},
		dropsSeed:   true,
	}, {
		name: "a restart's reset of variables holds over the other writer's older variables",
		steps: []step{
			func(t *testing.T, a, b *journal.Journal) { setVar(a, "before", 1) },
			func(t *testing.T, a, b *journal.Journal) { b.Restarted(1); setVar(b, "after", 2) },
			func(t *testing.T, a, b *journal.Journal) { setVar(a, "stale", 3) },
		},
		wantVars: map[string]any{"after": 2.0},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := journal.NewMemory()
			seed := open(t, m, journal.Limits{})
			record(seed, "seed/x")
			a := open(t, m, journal.Limits{})
			b := open(t, m.Writer(), journal.Limits{})
			for _, s := range tc.steps {
				s(t, a, b)
			}
			got := open(t, m, journal.Limits{}).Data()
			want := tc.wantEntries
			if !tc.dropsSeed {
				want = append([]string{"seed/x"}, want...)
			}
			var gotKeys []string
			for k := range got.Entries {
				gotKeys = append(gotKeys, k)
			}
			if diff := cmp.Diff(want, gotKeys, sortStrings); diff != "" {
				t.Errorf("stored entries (-want +got):\n%s", diff)
			}
			if tc.wantVars == nil {
				tc.wantVars = map[string]any{}
			}
			if diff := cmp.Diff(normal(t, tc.wantVars), normal(t, got.Vars)); diff != "" {
				t.Errorf("stored variables (-want +got):\n%s", diff)
			}
		})
	}
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// TestReplayStaysWithItsOp: an entry recorded by one op is not handed to
// another op at the same path (the definition was edited mid-attempt).
func TestReplayStaysWithItsOp(t *testing.T) {
	base := newCounter(func(call *op.Call, n int) (op.Result, error) {
		return op.Result{Returns: map[string]any{"by": call.Name.String()}}, nil
	})
	j := open(t, journal.NewMemory(), journal.Limits{})
	r := j.Runner(base)
	ctx := context.Background()
	post := &op.Call{Name: op.Name{Provider: "http", Do: "post"}, Path: "notify", Class: op.Effect,
		Step: op.Step{StepName: "notify", StepID: "notify-1"}}
	if _, err := r.Run(ctx, post); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Run(ctx, post); err != nil || base.n("notify-1", "notify") != 1 {
		t.Fatalf("same op again: %+v, %v, %d calls; want a replay", res, err, base.n("notify-1", "notify"))
	}
	del := *post
	del.Name = op.Name{Provider: "kube", Do: "delete"}
	res, err := r.Run(ctx, &del)
	if err == nil || !op.IsPermanent(err) || base.n("notify-1", "notify") != 1 {
		t.Fatalf("another op at the path: %+v, %v, %d calls; want a permanent error and no call", res, err, base.n("notify-1", "notify"))
	}
	for _, want := range []string{`step "notify"`, `path "notify"`, "http.post", "kube.delete"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// An entry from before entries named their op is replayed.
	if err := j.Record(ctx, journal.Key("notify-1", "old"), journal.Entry{Message: "old"}); err != nil {
		t.Fatal(err)
	}
	old := del
	old.Path = "old"
	if res, err := r.Run(ctx, &old); err != nil || res.Message != "old" {
		t.Errorf("entry without op: %+v, %v; want a replay", res, err)
	}
}
