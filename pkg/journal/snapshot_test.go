package journal_test

import (
	"context"
	"testing"

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
	if err := ctl.SnapshotVars("b-1", map[string]any{"keep": "k", "gone": "g"}); err != nil {
		t.Fatal(err)
	}
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
	if d.Snapshots["b-1"]["gone"] != "g" {
		t.Errorf("snapshots after the restore: %v, want b-1's kept", d.Snapshots)
	}

	// The same snapshot again changes nothing; no variables, no snapshot.
	j, err := journal.Open(ctx, store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SnapshotVars("b-1", map[string]any{"keep": "k", "gone": "g"}); err != nil {
		t.Fatal(err)
	}
	if err := j.SnapshotVars("c-1", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.SnapshotOf("c-1"); ok {
		t.Error("an attempt that saw no variables has a snapshot")
	}
	before := store.Saves()
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Saves() != before {
		t.Error("an unchanged snapshot made the journal save")
	}

	// RetainSnapshots drops the others.
	j.RetainSnapshots(func(id string) bool { return id != "b-1" })
	if _, ok := j.SnapshotOf("b-1"); ok {
		t.Error("b-1's snapshot kept after RetainSnapshots dropped it")
	}
}
