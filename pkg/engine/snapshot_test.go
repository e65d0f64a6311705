package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// eightEchoes is a run of eight echo steps, one after the other.
func eightEchoes(t *testing.T) *opsRig {
	var steps []v1alpha1.WorkflowStep
	for i := range 8 {
		steps = append(steps, leaf(fmt.Sprintf("s%d", i), "echo"))
	}
	r := newOpsRig(t, steps...)
	r.run.Spec.Mode = &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}
	r.g, _ = graph.Build(r.steps, r.run.Spec.Mode)
	return r
}

// A run whose context variables are large, and whose steps all see the
// same ones, succeeds as it did before snapshots: its journal holds one
// copy of them besides the variables, not one per step attempt (eight
// copies of 100 KiB were over the journal's bound of 768 KiB).
func TestLargeContextManyStepsOneSnapshot(t *testing.T) {
	r := eightEchoes(t)
	if err := engine.SetContext(&r.run.Status, r.j, "big", strings.Repeat("x", 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "one"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if r.run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s (%s), want succeeded", r.run.Status.Phase, r.run.Status.Message)
	}
	d := r.j.Data()
	if len(d.SnapshotKeys) != 8 || len(d.SnapshotValues) != 1 {
		t.Errorf("journal: %d attempts naming %d snapshot values, want 8 naming 1", len(d.SnapshotKeys), len(d.SnapshotValues))
	}
	// Changed since (as a step's #DoVar could have): the retry restores it.
	if err := r.j.SetVar("flag", "two"); err != nil {
		t.Fatal(err)
	}
	if err := engine.RetryFrom(&r.run.Status, r.g, "s5", r.j); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := r.sentBy("s7"); len(got) != 2 || got[1].flag != "one" {
		t.Errorf("s7 sent %v, want a second time with flag one (what s5 saw)", got)
	}
}

// Variables too large to snapshot within the journal's bound do not fail
// the steps that see them; a retry from such a step is refused, saying
// why, and changes nothing.
func TestSnapshotOverTheBoundRefusesRetry(t *testing.T) {
	r := newOpsRig(t, leaf("b", "echo"), leaf("c", "echo", "b"))
	// The variables fit the bound of 768 KiB once, not twice.
	if err := engine.SetContext(&r.run.Status, r.j, "big", strings.Repeat("x", 400<<10)); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if r.run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s (%s), want succeeded", r.run.Status.Phase, r.run.Status.Message)
	}
	if d := r.j.Data(); d.SnapshotKeys[r.step("b").ID] != journal.SnapshotUnknown || len(d.SnapshotValues) != 0 {
		t.Errorf("snapshot keys %v, %d values; want b's unknown and none kept", d.SnapshotKeys, len(d.SnapshotValues))
	}
	before := *r.run.Status.DeepCopy()
	err := engine.RetryFrom(&r.run.Status, r.g, "b", r.j)
	if !errors.Is(err, journal.ErrSnapshotNotKept) {
		t.Fatalf("retry from b: %v, want ErrSnapshotNotKept", err)
	}
	for _, want := range []string{`retry from step "b"`, "context snapshot was not kept", "bound of 786432 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !r.run.Status.Finished || r.run.Status.Steps[0].Phase != before.Steps[0].Phase || r.run.Status.Steps[0].ID != before.Steps[0].ID {
		t.Errorf("a refused retry changed the status: %+v", r.run.Status)
	}
}
