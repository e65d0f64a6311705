package compat_test

import (
	"testing"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// A suspend step with a duration, as in KubeVela's examples
// (suspend with duration: 1s), resumes by itself and the run succeeds.
func TestSuspendWithDuration(t *testing.T) {
	ns := newNamespace(t, "compat-suspend")
	name := runYAML(t, ns, `
metadata: {name: pause}
spec:
  workflowSpec:
    steps:
    - {name: wait-a-moment, type: suspend, properties: {duration: 1s}}
`)
	run := waitFinished(t, ns, name)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("phase %s, want succeeded", run.Status.Phase)
	}
	if s := stepOf(t, run, "wait-a-moment"); s.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
		t.Fatalf("step phase %s", s.Phase)
	}
}
