package engine_test

import (
	"testing"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// The operator's suspend remembers whether the step was waiting on a
// condition (SREWorks tells WAITING_SUSPEND from RUNNING_SUSPEND), and a
// resume makes either run again.
func TestSuspendKeepsWaiting(t *testing.T) {
	for _, tc := range []struct{ reason, want string }{
		{engine.ReasonWait, engine.ReasonWaitSuspend},
		{"", engine.ReasonSuspend},
		{engine.ReasonError, engine.ReasonSuspend},
	} {
		st := &v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{{
			StepStatus: v1alpha1.StepStatus{Name: "a", Type: "wait", Phase: v1alpha1.WorkflowStepPhaseRunning, Reason: tc.reason},
		}}}
		if err := engine.Suspend(st, "a"); err != nil {
			t.Fatal(err)
		}
		if got := st.Steps[0].StepStatus; got.Phase != v1alpha1.WorkflowStepPhaseSuspending || got.Reason != tc.want {
			t.Errorf("running with reason %q, suspended: phase %s reason %q, want suspending %q", tc.reason, got.Phase, got.Reason, tc.want)
		}
		if err := engine.Resume(st, "a"); err != nil {
			t.Fatal(err)
		}
		if got := st.Steps[0].Phase; got != v1alpha1.WorkflowStepPhaseRunning {
			t.Errorf("running with reason %q, suspended and resumed: phase %s", tc.reason, got)
		}
	}
}
