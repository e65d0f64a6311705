package app

import (
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// SREWorks' instance states (a run's), as InstanceState reports them.
// SREWorks' PREPROCESSING is never reported: a run has no such phase.
const (
	InstancePending    = "PENDING"
	InstanceRunning    = "RUNNING"
	InstanceSuspend    = "SUSPEND"
	InstanceSuccess    = "SUCCESS"
	InstanceFailure    = "FAILURE"
	InstanceException  = "EXCEPTION"
	InstanceTerminated = "TERMINATED"
)

// SREWorks' task states (a step's), as TaskState reports them.
const (
	TaskPending        = "PENDING"
	TaskRunning        = "RUNNING"
	TaskWaiting        = "WAITING"
	TaskRunningSuspend = "RUNNING_SUSPEND"
	TaskWaitingSuspend = "WAITING_SUSPEND"
	TaskSuccess        = "SUCCESS"
	TaskFailure        = "FAILURE"
	TaskException      = "EXCEPTION"
	TaskTerminated     = "TERMINATED"
)

// The step reasons the mapping looks at. They are the engine's
// (engine.Reason*), the evaluator's (eval.Reason*) and the controller's
// (controller.ReasonWriteRefused), spelled out here because this package
// is imported by op families, which must not import the engine; a test
// checks that they match.
const (
	reasonWait            = "Wait"
	reasonWaitSuspend     = "WaitSuspend"
	reasonTerminate       = "Terminate"
	reasonUpstream        = "UpstreamNotSucceeded"
	reasonSubStepFailed   = "SubStepFailed"
	reasonJournal         = "JournalError"
	reasonEvalInterrupted = "EvalInterrupted"
	reasonEvalTimeout     = "EvalTimeout"
	reasonEvalMemory      = "EvalMemory"
	reasonWriteRefused    = "WriteRefused"
)

// exceptional are the reasons of a step that failed not by what it does
// but because Stepflow could not carry it on: its evaluations were
// interrupted too often, went over the evaluator's time or memory bound,
// its journal could not be saved, or the API server refused to store what
// it produced. Running it again on a healthier system may succeed.
var exceptional = map[string]bool{
	reasonJournal:         true,
	reasonEvalInterrupted: true,
	reasonEvalTimeout:     true,
	reasonEvalMemory:      true,
	reasonWriteRefused:    true,
}

// InstanceState maps a run to SREWorks' instance states: PENDING, RUNNING,
// SUSPEND, SUCCESS, FAILURE, EXCEPTION, TERMINATED. The table is in the
// package doc.
func InstanceState(run *v1alpha1.WorkflowRun) string {
	st := &run.Status
	switch st.Phase {
	case "", v1alpha1.WorkflowRunInitializing:
		return InstancePending
	case v1alpha1.WorkflowRunExecuting:
		if st.Suspend {
			// Suspended from outside; the next tick makes it suspending.
			return InstanceSuspend
		}
		return InstanceRunning
	case v1alpha1.WorkflowRunSuspending:
		if !st.Suspend && !anySuspending(st) {
			// Resumed; the next tick makes it executing.
			return InstanceRunning
		}
		return InstanceSuspend
	case v1alpha1.WorkflowRunSucceeded, v1alpha1.WorkflowRunSkipped:
		return InstanceSuccess
	case v1alpha1.WorkflowRunTerminated:
		return InstanceTerminated
	case v1alpha1.WorkflowRunFailed:
		return failedState(st)
	case v1alpha1.WorkflowRunRolledBack, v1alpha1.WorkflowRunRollbackFailed:
		// Rolled back after a failure, or after a terminate (which a
		// terminate during the rollback also ends as).
		if st.Terminated {
			return InstanceTerminated
		}
		return failedState(st)
	}
	// A phase this version does not know: not finished, as far as it can
	// tell.
	return InstanceRunning
}

// anySuspending reports whether a step or sub-step of st is suspending.
func anySuspending(st *v1alpha1.WorkflowRunStatus) bool {
	for i := range st.Steps {
		if st.Steps[i].Phase == v1alpha1.WorkflowStepPhaseSuspending {
			return true
		}
		for _, sub := range st.Steps[i].SubStepsStatus {
			if sub.Phase == v1alpha1.WorkflowStepPhaseSuspending {
				return true
			}
		}
	}
	return false
}

// failedState is FAILURE when a step failed by its own doing, EXCEPTION
// when every failed step failed exceptionally, or the run was failed
// because the API server refused its status (its Failed condition's reason
// is WriteRefused; its steps may have been dropped).
func failedState(st *v1alpha1.WorkflowRunStatus) string {
	exception := false
	for i := range st.Steps {
		steps := append([]v1alpha1.StepStatus{st.Steps[i].StepStatus}, st.Steps[i].SubStepsStatus...)
		for _, ss := range steps {
			// A group that failed through a sub-step is judged by the
			// sub-step.
			if ss.Phase != v1alpha1.WorkflowStepPhaseFailed || ss.Reason == reasonSubStepFailed {
				continue
			}
			switch TaskState(ss) {
			case TaskFailure:
				return InstanceFailure
			case TaskException:
				exception = true
			}
		}
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionFailed); c != nil && c.Reason == reasonWriteRefused {
		exception = true
	}
	if exception {
		return InstanceException
	}
	return InstanceFailure
}

// TaskState maps a step to SREWorks' task states: PENDING, RUNNING,
// WAITING (waiting on a condition: reason Wait), RUNNING_SUSPEND,
// WAITING_SUSPEND, SUCCESS, FAILURE, EXCEPTION (a failure that is not the
// step's own, see exceptional), TERMINATED (reason Terminate). The table
// is in the package doc.
func TaskState(step v1alpha1.StepStatus) string {
	switch step.Phase {
	case "", v1alpha1.WorkflowStepPhasePending:
		return TaskPending
	case v1alpha1.WorkflowStepPhaseRunning:
		if step.Reason == reasonWait {
			return TaskWaiting
		}
		return TaskRunning
	case v1alpha1.WorkflowStepPhaseSuspending:
		if step.Reason == reasonWaitSuspend {
			return TaskWaitingSuspend
		}
		return TaskRunningSuspend
	case v1alpha1.WorkflowStepPhaseSucceeded:
		return TaskSuccess
	case v1alpha1.WorkflowStepPhaseSkipped:
		if step.Reason == reasonUpstream {
			// It never ran because the run stopped before it.
			return TaskTerminated
		}
		// Its if was false (or its group's): nothing to do, done.
		return TaskSuccess
	case v1alpha1.WorkflowStepPhaseStopped:
		return TaskTerminated
	case v1alpha1.WorkflowStepPhaseFailed:
		switch {
		case step.Reason == reasonTerminate:
			return TaskTerminated
		case exceptional[step.Reason]:
			return TaskException
		}
		return TaskFailure
	}
	return TaskRunning
}
