package app

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Every step phase, with every reason the engine, the evaluator and the
// controller give it.
func TestTaskState(t *testing.T) {
	const (
		pending    = v1alpha1.WorkflowStepPhasePending
		running    = v1alpha1.WorkflowStepPhaseRunning
		suspending = v1alpha1.WorkflowStepPhaseSuspending
		succeeded  = v1alpha1.WorkflowStepPhaseSucceeded
		failed     = v1alpha1.WorkflowStepPhaseFailed
		skipped    = v1alpha1.WorkflowStepPhaseSkipped
		stopped    = v1alpha1.WorkflowStepPhaseStopped
	)
	for _, tc := range []struct {
		phase  v1alpha1.WorkflowStepPhase
		reason string
		want   string
	}{
		{"", "", TaskPending},
		{pending, "", TaskPending},

		{running, "", TaskRunning},
		{running, "Wait", TaskWaiting},
		{running, "Error", TaskRunning},           // backing off before the next attempt
		{running, "JournalError", TaskRunning},    // evaluated again: its record was not saved
		{running, "EvalInterrupted", TaskRunning}, // evaluated again: not its fault
		{running, "Suspend", TaskRunning},         // resumed, not evaluated since
		{running, "WaitSuspend", TaskRunning},     // resumed from WAITING_SUSPEND

		{suspending, "Suspend", TaskRunningSuspend}, // #Suspend in its template, or the operator
		{suspending, "WaitSuspend", TaskWaitingSuspend},
		{suspending, "", TaskRunningSuspend}, // a group, through its sub-steps

		{succeeded, "", TaskSuccess},

		{skipped, "Skip", TaskSuccess},
		{skipped, "UpstreamNotSucceeded", TaskTerminated},

		{stopped, "", TaskTerminated},

		{failed, "Terminate", TaskTerminated},
		{failed, "Timeout", TaskFailure},
		{failed, "FailedAfterRetries", TaskFailure},
		{failed, "OpError", TaskFailure},
		{failed, "Fail", TaskFailure},
		{failed, "TemplateError", TaskFailure},
		{failed, "ParameterError", TaskFailure},
		{failed, "DefinitionNotFound", TaskFailure},
		{failed, "InputError", TaskFailure},
		{failed, "OutputError", TaskFailure},
		{failed, "ConditionError", TaskFailure},
		{failed, "SubStepFailed", TaskFailure},
		{failed, "", TaskFailure},
		{failed, "JournalError", TaskException},
		{failed, "EvalInterrupted", TaskException},
		{failed, "EvalTimeout", TaskException},
		{failed, "EvalMemory", TaskException},
		{failed, "WriteRefused", TaskException},

		{"someday", "", TaskRunning},
	} {
		got := TaskState(v1alpha1.StepStatus{Name: "s", Phase: tc.phase, Reason: tc.reason})
		if got != tc.want {
			t.Errorf("step %s (reason %q): %s, want %s", tc.phase, tc.reason, got, tc.want)
		}
	}
}

// Every run phase; a failed run by what its steps failed of.
func TestInstanceState(t *testing.T) {
	step := func(name string, phase v1alpha1.WorkflowStepPhase, reason string, subs ...v1alpha1.StepStatus) v1alpha1.WorkflowStepStatus {
		return v1alpha1.WorkflowStepStatus{StepStatus: v1alpha1.StepStatus{Name: name, Phase: phase, Reason: reason}, SubStepsStatus: subs}
	}
	sub := func(name string, phase v1alpha1.WorkflowStepPhase, reason string) v1alpha1.StepStatus {
		return step(name, phase, reason).StepStatus
	}
	const (
		failed  = v1alpha1.WorkflowStepPhaseFailed
		skipped = v1alpha1.WorkflowStepPhaseSkipped
		done    = v1alpha1.WorkflowStepPhaseSucceeded
	)
	refused := []metav1.Condition{{Type: v1alpha1.ConditionFailed, Status: metav1.ConditionTrue, Reason: "WriteRefused"}}
	for _, tc := range []struct {
		name string
		st   v1alpha1.WorkflowRunStatus
		want string
	}{
		{"no status yet", v1alpha1.WorkflowRunStatus{}, InstancePending},
		{"initializing", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunInitializing}, InstancePending},
		{"executing", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}, InstanceRunning},
		{"executing, suspended from outside", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Suspend: true}, InstanceSuspend},
		{"suspending", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true}, InstanceSuspend},
		{"suspending: a step suspends", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", v1alpha1.WorkflowStepPhaseSuspending, "Suspend")}}, InstanceSuspend},
		{"suspending: a sub-step suspends", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Steps: []v1alpha1.WorkflowStepStatus{
			step("g", v1alpha1.WorkflowStepPhaseRunning, "", sub("x", v1alpha1.WorkflowStepPhaseSuspending, "Suspend"))}}, InstanceSuspend},
		{"suspending, resumed: no tick since", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", v1alpha1.WorkflowStepPhaseRunning, "Suspend")}}, InstanceRunning},
		{"succeeded", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Finished: true}, InstanceSuccess},
		{"skipped", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSkipped, Finished: true}, InstanceSuccess},
		{"terminated", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunTerminated, Terminated: true, Finished: true}, InstanceTerminated},
		{"unknown phase", v1alpha1.WorkflowRunStatus{Phase: "someday"}, InstanceRunning},
		{"rolling back", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRollingBack, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", failed, "Fail")}}, InstanceRunning},
		{"rolled back after a failure", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRolledBack, Finished: true, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", failed, "Fail")}}, InstanceFailure},
		{"rollback failed", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRollbackFailed, Finished: true, RollbackError: "x", Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", failed, "Fail")}}, InstanceFailure},
		{"rolled back after a terminate", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRolledBack, Finished: true, Terminated: true}, InstanceTerminated},

		{"failed: a step's own failure", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", failed, "FailedAfterRetries"), step("c", skipped, "UpstreamNotSucceeded")}}, InstanceFailure},
		{"failed: a template error", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", failed, "TemplateError")}}, InstanceFailure},
		{"failed: a step timed out", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", failed, "Timeout")}}, InstanceFailure},
		{"failed: interrupted too often", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", failed, "EvalInterrupted"), step("c", skipped, "UpstreamNotSucceeded")}}, InstanceException},
		{"failed: journal not saved", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", failed, "JournalError")}}, InstanceException},
		{"failed: an exception and a failure (DAG)", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", failed, "EvalTimeout"), step("b", failed, "Fail")}}, InstanceFailure},
		{"failed: a group, through an exceptional sub-step", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("g", failed, "SubStepFailed", sub("x", done, ""), sub("y", failed, "EvalMemory"))}}, InstanceException},
		{"failed: a group, through a failed sub-step", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Steps: []v1alpha1.WorkflowStepStatus{
			step("g", failed, "SubStepFailed", sub("x", failed, "OpError"), sub("y", failed, "EvalMemory"))}}, InstanceFailure},
		{"failed: status refused, steps dropped", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Conditions: refused}, InstanceException},
		{"failed: status refused, steps kept", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Conditions: refused, Steps: []v1alpha1.WorkflowStepStatus{
			step("a", done, ""), step("b", v1alpha1.WorkflowStepPhaseRunning, "")}}, InstanceException},
		{"failed: no step says why", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed}, InstanceFailure},
	} {
		run := &v1alpha1.WorkflowRun{Status: tc.st}
		if got := InstanceState(run); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
