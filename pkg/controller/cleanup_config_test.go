package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func TestCleanupConfigLoads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadConfig(write("ok.yaml", "cleanup:\n  ttlSecondsAfterFinished: 604800\n  rollbackTargets: 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cleanup.TTLSecondsAfterFinished == nil || *c.Cleanup.TTLSecondsAfterFinished != 604800 || c.Cleanup.RollbackTargets != 5 {
		t.Errorf("cleanup = %+v", c.Cleanup)
	}
	r := &CleanupReconciler{Config: c.Cleanup}
	if got := r.keepTargets(); got != 5 {
		t.Errorf("rollback targets %d, want 5", got)
	}
	if got := (&CleanupReconciler{Config: CleanupConfig{RollbackTargets: 1}}).keepTargets(); got != DefaultRollbackTargets {
		t.Errorf("rollback targets below the minimum: %d, want %d", got, DefaultRollbackTargets)
	}
	if _, err := LoadConfig(write("typo.yaml", "cleanup:\n  ttlSecondAfterFinished: 60\n")); err == nil || !strings.Contains(err.Error(), "typo.yaml") {
		t.Errorf("a misspelt cleanup key: %v, want an error naming the file", err)
	}
}

// The cleanup watch looks at every event of every run: for a run that
// has not finished, or finished with nothing to clean up, it makes no
// request and allocates nothing.
func TestCleanupKeysCostNothingOnTheHotPath(t *testing.T) {
	r := &CleanupReconciler{}
	ttl := int32(60)
	running := &v1alpha1.WorkflowRun{}
	running.Name, running.Namespace = "run", "ns"
	running.Spec.WorkflowRef, running.Spec.TTLSecondsAfterFinished = "wf", &ttl
	done := &v1alpha1.WorkflowRun{}
	done.Name, done.Namespace = "run", "ns"
	done.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{}
	done.Status.Finished, done.Status.Phase = true, v1alpha1.WorkflowRunSucceeded
	for name, run := range map[string]*v1alpha1.WorkflowRun{"running, with a TTL and a Workflow": running, "finished, nothing to clean": done} {
		if keys := r.keys(run); len(keys) != 0 {
			t.Errorf("%s: keys %v, want none", name, keys)
		}
		if n := testing.AllocsPerRun(100, func() { r.keys(run) }); n != 0 {
			t.Errorf("%s: %v allocations per event, want 0", name, n)
		}
	}
	done.Spec.TTLSecondsAfterFinished = &ttl
	if keys := r.keys(done); len(keys) != 1 || keys[0].Name != "run/run" {
		t.Errorf("with a TTL: keys %v, want run/run", keys)
	}
}
