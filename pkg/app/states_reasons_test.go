package app_test

import (
	"testing"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// The reasons the state mapping spells out are the ones the engine, the
// evaluator and the controller write.
func TestStateReasonsAreTheEngines(t *testing.T) {
	for _, tc := range []struct {
		phase  v1alpha1.WorkflowStepPhase
		reason string
		want   string
	}{
		{v1alpha1.WorkflowStepPhaseRunning, engine.ReasonWait, app.TaskWaiting},
		{v1alpha1.WorkflowStepPhaseSuspending, engine.ReasonWaitSuspend, app.TaskWaitingSuspend},
		{v1alpha1.WorkflowStepPhaseSkipped, engine.ReasonUpstreamNotSucceeded, app.TaskTerminated},
		{v1alpha1.WorkflowStepPhaseFailed, engine.ReasonTerminate, app.TaskTerminated},
		{v1alpha1.WorkflowStepPhaseFailed, eval.ReasonTerminate, app.TaskTerminated},
		{v1alpha1.WorkflowStepPhaseFailed, engine.ReasonJournal, app.TaskException},
		{v1alpha1.WorkflowStepPhaseFailed, eval.ReasonInterrupted, app.TaskException},
		{v1alpha1.WorkflowStepPhaseFailed, eval.ReasonTimeout, app.TaskException},
		{v1alpha1.WorkflowStepPhaseFailed, eval.ReasonMemory, app.TaskException},
		{v1alpha1.WorkflowStepPhaseFailed, controller.ReasonWriteRefused, app.TaskException},
	} {
		if got := app.TaskState(v1alpha1.StepStatus{Phase: tc.phase, Reason: tc.reason}); got != tc.want {
			t.Errorf("step %s (reason %q): %s, want %s", tc.phase, tc.reason, got, tc.want)
		}
	}
	group := &v1alpha1.WorkflowRun{Status: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{{
		StepStatus:     v1alpha1.StepStatus{Name: "g", Phase: v1alpha1.WorkflowStepPhaseFailed, Reason: engine.ReasonSubStepFailed},
		SubStepsStatus: []v1alpha1.StepStatus{{Name: "x", Phase: v1alpha1.WorkflowStepPhaseFailed, Reason: eval.ReasonInterrupted}},
	}}}}
	if got := app.InstanceState(group); got != app.InstanceException {
		t.Errorf("a group failed through an interrupted sub-step: %s, want %s", got, app.InstanceException)
	}
}
