package engine_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/graph"
)

// What kubectl get -o wide shows of a run through its life: the steps
// done out of all (status.progress), the duration once finished, and the
// conditions, also after a terminate (which no tick follows) and a retry.
func TestProgressDurationAndConditions(t *testing.T) {
	r := newOpsRig(t, leaf("b", "echo"), leaf("h", "halt"), leaf("c", "echo"))
	r.run.Spec.Mode = &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}
	r.g, _ = graph.Build(r.steps, r.run.Spec.Mode)
	r.now = r.now.Truncate(time.Second) // status times are whole seconds
	conds := func() map[string]string {
		got := map[string]string{}
		for _, c := range r.run.Status.Conditions {
			got[c.Type] = string(c.Status) + "/" + c.Reason
		}
		return got
	}
	check := func(when, progress string, duration time.Duration, want map[string]string) {
		t.Helper()
		st := r.run.Status
		var d time.Duration = -1
		if st.Duration != nil {
			d = st.Duration.Duration
		}
		if st.Progress != progress || d != duration {
			t.Errorf("%s: progress %q, duration %v; want %q, %v", when, st.Progress, d, progress, duration)
		}
		if diff := cmp.Diff(want, conds()); diff != "" {
			t.Errorf("%s: conditions (-want +got):\n%s", when, diff)
		}
	}

	r.settle() // b succeeded, h suspended
	check("suspended", "1/3", -1, map[string]string{"Ready": "True/Valid",
		"Succeeded": "False/Suspending", "Failed": "False/Suspending", "Suspended": "True/Suspending"})

	r.now = r.now.Add(90 * time.Second)
	took := r.now.Sub(r.run.Status.StartTime.Time)
	if err := engine.Terminate(&r.run.Status, "", r.now); err != nil {
		t.Fatal(err)
	}
	check("terminated", "2/3", took, map[string]string{"Ready": "True/Valid",
		"Succeeded": "False/Terminated", "Failed": "True/Terminated", "Suspended": "False/Terminated"})
	if c := meta.FindStatusCondition(r.run.Status.Conditions, v1alpha1.ConditionFailed); !c.LastTransitionTime.Time.Equal(r.now) {
		t.Errorf("Failed became True at %v, want %v (the terminate)", c.LastTransitionTime, r.now)
	}

	if err := engine.RetryFrom(&r.run.Status, r.g, "h", r.j); err != nil {
		t.Fatal(err)
	}
	if r.run.Status.Duration != nil {
		t.Errorf("a retried run keeps the duration %v of its last end", r.run.Status.Duration)
	}
	r.settle()
	check("retried, suspended again", "1/3", -1, map[string]string{"Ready": "True/Valid",
		"Succeeded": "False/Suspending", "Failed": "False/Suspending", "Suspended": "True/Suspending"})
}
