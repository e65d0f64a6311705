package journal_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// Snapshots and restored variables survive a conflicting Save by another
// writer: the other writer's snapshot stays, a variable the restore
// removed stays removed, and an equal snapshot makes nothing dirty.
func TestSnapshotsAndRestoreMergeOnConflict(t *testing.T) {
	ctx := context.Background()
	store := journal.NewMemory()
	seed := journal.New(journal.Data{}, store, journal.Limits{})
	for k, v := range map[string]any{"keep": "k", "gone": "g"} {
		if err := seed.PutVar(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := seed.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ctl, err := journal.Open(ctx, store.Writer(), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := journal.Open(ctx, store.Writer(), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ctl.SnapshotVars("b-1", map[string]any{"keep": "k", "gone": "g"})
	if err := ctl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cli.RestoreVars(map[string]any{"keep": "again"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.Flush(ctx); err != nil { // conflicts with ctl's save
		t.Fatal(err)
	}
	d, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Vars["gone"]; ok || d.Vars["keep"] != "again" {
		t.Errorf("variables after the restore: %v, want only keep=again", d.Vars)
	}
	if d.SnapshotValues[d.SnapshotKeys["b-1"]]["gone"] != "g" {
		t.Errorf("snapshots after the restore: %v %v, want b-1's kept", d.SnapshotKeys, d.SnapshotValues)
	}

	// The same snapshot again changes nothing; no variables, no snapshot.
	j, err := journal.Open(ctx, store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	j.SnapshotVars("b-1", map[string]any{"keep": "k", "gone": "g"})
	j.SnapshotVars("c-1", nil)
	if _, ok, err := j.SnapshotOf("c-1"); ok || err != nil {
		t.Errorf("an attempt that saw no variables has a snapshot (%v)", err)
	}
	before := store.Saves()
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Saves() != before {
		t.Error("an unchanged snapshot made the journal save")
	}

	// RetainSnapshots drops the others, and the value no attempt names.
	j.RetainSnapshots(func(id string) bool { return id != "b-1" })
	if _, ok, _ := j.SnapshotOf("b-1"); ok {
		t.Error("b-1's snapshot kept after RetainSnapshots dropped it")
	}
	if d := j.Data(); len(d.SnapshotValues) != 0 {
		t.Errorf("snapshot values no attempt names kept: %v", d.SnapshotValues)
	}
}

var (
	varsA = map[string]any{"v": "a"}
	varsB = map[string]any{"v": "b"}
)

// snapOp is one change a writer makes to its journal's snapshots.
type snapOp struct {
	snap   string         // attempt id to snapshot vars under
	vars   map[string]any // with snap
	retain []string       // else: RetainSnapshots keeping these
}

func (o snapOp) apply(j *journal.Journal) {
	if o.snap != "" {
		j.SnapshotVars(o.snap, o.vars)
		return
	}
	j.RetainSnapshots(func(id string) bool {
		for _, k := range o.retain {
			if k == id {
				return true
			}
		}
		return false
	})
}

// Two writers change the snapshots of one journal; the second's Save
// conflicts with the first's and puts its changes over them. Each
// attempt's snapshot is the last writer's, values are stored once, and a
// value no attempt names is dropped.
func TestSnapshotMergeOnConflict(t *testing.T) {
	for _, tc := range []struct {
		name        string
		seed, first []snapOp
		second      []snapOp
		want        map[string]map[string]any // attempt: vars
		wantValues  int
	}{
		{
			name:       "both add attempts that saw the same variables",
			first:      []snapOp{{snap: "a-1", vars: varsA}},
			second:     []snapOp{{snap: "b-1", vars: varsA}},
			want:       map[string]map[string]any{"a-1": varsA, "b-1": varsA},
			wantValues: 1,
		},
		{
			name:       "both add attempts that saw different variables",
			first:      []snapOp{{snap: "a-1", vars: varsA}},
			second:     []snapOp{{snap: "b-1", vars: varsB}},
			want:       map[string]map[string]any{"a-1": varsA, "b-1": varsB},
			wantValues: 2,
		},
		{
			name:       "one drops the only attempt naming a value the other still names through a new attempt",
			seed:       []snapOp{{snap: "a-1", vars: varsA}},
			first:      []snapOp{{retain: nil}},
			second:     []snapOp{{snap: "b-1", vars: varsA}},
			want:       map[string]map[string]any{"b-1": varsA},
			wantValues: 1,
		},
		{
			name:       "one drops an attempt while the other adds one: the dropped value goes",
			seed:       []snapOp{{snap: "a-1", vars: varsA}},
			first:      []snapOp{{snap: "b-1", vars: varsB}},
			second:     []snapOp{{retain: []string{"b-1"}}},
			want:       map[string]map[string]any{"b-1": varsB},
			wantValues: 1,
		},
		{
			name:       "both snapshot one attempt: the last writer's",
			seed:       []snapOp{{snap: "a-1", vars: varsA}},
			first:      []snapOp{{snap: "a-1", vars: varsB}},
			second:     []snapOp{{snap: "a-1", vars: map[string]any{"v": "c"}}, {snap: "x-1", vars: varsA}},
			want:       map[string]map[string]any{"a-1": {"v": "c"}, "x-1": varsA},
			wantValues: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store := journal.NewMemory()
			seed := journal.New(journal.Data{}, store, journal.Limits{})
			// A variable, so the seed saves even with no snapshot.
			if err := seed.PutVar("seeded", true); err != nil {
				t.Fatal(err)
			}
			for _, o := range tc.seed {
				o.apply(seed)
			}
			if err := seed.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			first, err := journal.Open(ctx, store.Writer(), journal.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			second, err := journal.Open(ctx, store.Writer(), journal.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []struct {
				j   *journal.Journal
				ops []snapOp
			}{{first, tc.first}, {second, tc.second}} {
				for _, o := range w.ops {
					o.apply(w.j)
				}
				// Drops alone do not save (as Retain's): a variable does.
				if err := w.j.PutVar("writer", len(w.ops)); err != nil {
					t.Fatal(err)
				}
				if err := w.j.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			d, err := store.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]any{}
			for id, key := range d.SnapshotKeys {
				got[id] = d.SnapshotValues[key]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("snapshots saved (-want +got):\n%s", diff)
			}
			if len(d.SnapshotValues) != tc.wantValues {
				t.Errorf("%d snapshot values saved, want %d: %v", len(d.SnapshotValues), tc.wantValues, d.SnapshotValues)
			}
		})
	}
}

// Attempts that saw the same variables cost one copy of them: eight
// attempts of ~100 KiB fit a bound that eight copies would not.
func TestSnapshotsStoredOnce(t *testing.T) {
	vars := map[string]any{"big": strings.Repeat("x", 100<<10)}
	j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
	if err := j.PutVar("big", vars["big"]); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a-1", "b-1", "c-1", "d-1", "e-1", "f-1", "g-1", "h-1"} {
		j.SnapshotVars(id, vars)
		if v, ok, err := j.SnapshotOf(id); !ok || err != nil || v["big"] != vars["big"] {
			t.Fatalf("snapshot of %s: kept %v, %v", id, ok, err)
		}
	}
	if d := j.Data(); len(d.SnapshotKeys) != 8 || len(d.SnapshotValues) != 1 {
		t.Errorf("%d attempts name %d values, want 8 naming 1", len(d.SnapshotKeys), len(d.SnapshotValues))
	}
	if size := j.Size(); size > 210<<10 {
		t.Errorf("journal is %d bytes, want the variables and one copy (about 200 KiB)", size)
	}
}

// A snapshot that does not fit the bound is not kept: the attempt is
// marked unknown (not "saw none"), SnapshotOf says why, and a later one
// that fits replaces the marker.
func TestSnapshotOverTheBound(t *testing.T) {
	limits := journal.Limits{MaxTotalBytes: 4 << 10}
	j := journal.New(journal.Data{}, journal.NewMemory(), limits)
	small := map[string]any{"v": "small"}
	big := map[string]any{"v": strings.Repeat("x", 3<<10)}
	if err := j.PutVar("v", big["v"]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		vars    map[string]any
		want    map[string]any
		notKept bool
	}{
		{"fits", small, small, false},
		{"over the bound: unknown, the earlier snapshot is stale", big, nil, true},
		{"again over the bound", big, nil, true},
		{"fits again", small, small, false},
	} {
		j.SnapshotVars("a-1", tc.vars)
		got, ok, err := j.SnapshotOf("a-1")
		if notKept := errors.Is(err, journal.ErrSnapshotNotKept); notKept != tc.notKept || ok == tc.notKept {
			t.Fatalf("%s: SnapshotOf: %v, %v; want not kept %v", tc.name, ok, err, tc.notKept)
		}
		if tc.notKept && !strings.Contains(err.Error(), `attempt "a-1"`) {
			t.Errorf("%s: error %q does not name the attempt", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: snapshot (-want +got):\n%s", tc.name, diff)
		}
		if d := j.Data(); tc.notKept && (d.SnapshotKeys["a-1"] != journal.SnapshotUnknown || len(d.SnapshotValues) != 0) {
			t.Errorf("%s: keys %v, values %v; want a-1 unknown and no value", tc.name, d.SnapshotKeys, d.SnapshotValues)
		}
	}
}

// A journal saved in the first format (each attempt's variables in full)
// reads as content-keyed snapshots, and is saved in the new format.
func TestSnapshotsFirstFormatRead(t *testing.T) {
	ctx := context.Background()
	store := journal.NewMemory()
	old := journal.Data{Vars: map[string]any{"v": "now"},
		Snapshots: map[string]map[string]any{"a-1": {"v": "then"}, "b-1": {"v": "then"}}}
	if err := store.Save(ctx, old); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(ctx, store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a-1", "b-1"} {
		if v, ok, err := j.SnapshotOf(id); !ok || err != nil || v["v"] != "then" {
			t.Errorf("snapshot of %s: %v %v %v", id, v, ok, err)
		}
	}
	if err := j.PutVar("v", "later"); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Snapshots) != 0 || len(d.SnapshotKeys) != 2 || len(d.SnapshotValues) != 1 {
		t.Errorf("saved: old %v, keys %v, values %v; want two keys naming one value", d.Snapshots, d.SnapshotKeys, d.SnapshotValues)
	}
}

// Snapshots give way to entries and variables: one that fits only
// without the snapshots is kept and the snapshots are dropped (their
// attempts marked unknown); one that would not fit even without them
// fails as before, and the snapshots stay.
func TestSnapshotsGiveWay(t *testing.T) {
	limits := journal.Limits{MaxTotalBytes: 10 << 10, MaxEntryBytes: 10 << 10}
	kib := func(n int) string { return strings.Repeat("x", n<<10) }
	for _, tc := range []struct {
		name    string
		add     func(j *journal.Journal) error
		wantErr bool
		kept    bool // the snapshot
	}{
		{"a small entry fits beside the snapshot", func(j *journal.Journal) error {
			return j.Record(context.Background(), "e-1/http", journal.Entry{Message: kib(1)})
		}, false, true},
		{"an entry that fits only without the snapshot", func(j *journal.Journal) error {
			return j.Record(context.Background(), "e-1/http", journal.Entry{Message: kib(4)})
		}, false, false},
		{"a variable that fits only without the snapshot", func(j *journal.Journal) error {
			return j.PutVar("w", kib(4))
		}, false, false},
		{"an entry that fits not even without the snapshot", func(j *journal.Journal) error {
			return j.Record(context.Background(), "e-1/http", journal.Entry{Message: kib(8)})
		}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := journal.New(journal.Data{}, journal.NewMemory(), limits)
			if err := j.PutVar("v", kib(3)); err != nil {
				t.Fatal(err)
			}
			j.SnapshotVars("a-1", j.Vars())
			j.SnapshotVars("b-1", j.Vars())
			if _, ok, err := j.SnapshotOf("a-1"); !ok || err != nil {
				t.Fatalf("snapshot not kept to begin with: %v", err)
			}
			err := tc.add(j)
			if (err != nil) != tc.wantErr {
				t.Fatalf("add: %v, want an error %v", err, tc.wantErr)
			}
			for _, id := range []string{"a-1", "b-1"} {
				_, ok, err := j.SnapshotOf(id)
				if ok != tc.kept || (!tc.kept && !errors.Is(err, journal.ErrSnapshotNotKept)) {
					t.Errorf("snapshot of %s: kept %v (%v), want kept %v", id, ok, err, tc.kept)
				}
			}
			if size := j.Size(); size > limits.MaxTotalBytes {
				t.Errorf("journal is %d bytes, over its bound", size)
			}
		})
	}
}
