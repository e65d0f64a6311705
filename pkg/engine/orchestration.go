package engine

import (
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// orchestration is the run's onFailure, onTerminate, ...: Input's, else
// the run's own spec.
func (t *tick) orchestration() *v1alpha1.Orchestration {
	if t.in.Orchestration != nil {
		return t.in.Orchestration
	}
	return &t.in.Run.Spec.Orchestration
}

func (t *tick) rollsBackOnTerminate() bool {
	return t.orchestration().OnTerminate == v1alpha1.FailurePolicyCompensate
}

// ResolveOrchestration is what a run says about its queue, rollback and
// callback: each of its own fields that is set, else its Workflow's (wf
// may be nil: a run with its own workflowSpec).
func ResolveOrchestration(run *v1alpha1.WorkflowRun, wf *v1alpha1.Workflow) v1alpha1.Orchestration {
	o := run.Spec.Orchestration
	if wf == nil {
		return o
	}
	if o.Queue == "" {
		o.Queue = wf.Queue
	}
	if o.OnFailure == "" {
		o.OnFailure = wf.OnFailure
	}
	if o.OnTerminate == "" {
		o.OnTerminate = wf.OnTerminate
	}
	if o.Callback == nil {
		o.Callback = wf.Callback
	}
	return o
}

// TerminateFor terminates the run (or one step) as its orchestration o
// says: TerminateRollingBack when its onTerminate is Compensate, else
// Terminate.
func TerminateFor(st *v1alpha1.WorkflowRunStatus, o v1alpha1.Orchestration, step string, now time.Time) error {
	if o.OnTerminate == v1alpha1.FailurePolicyCompensate {
		return TerminateRollingBack(st, step, now)
	}
	return Terminate(st, step, now)
}
