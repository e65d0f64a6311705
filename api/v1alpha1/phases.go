package v1alpha1

// WorkflowRunPhase is the phase of a run, reported in status.status.
type WorkflowRunPhase string

const (
	// WorkflowRunInitializing: the run is accepted but no step has started.
	WorkflowRunInitializing WorkflowRunPhase = "initializing"
	// WorkflowRunExecuting: steps are running or due.
	WorkflowRunExecuting WorkflowRunPhase = "executing"
	// WorkflowRunSuspending: the run waits to be resumed.
	WorkflowRunSuspending WorkflowRunPhase = "suspending"
	// WorkflowRunTerminated: the run was stopped before it could finish.
	WorkflowRunTerminated WorkflowRunPhase = "terminated"
	// WorkflowRunFailed: a step failed for good.
	WorkflowRunFailed WorkflowRunPhase = "failed"
	// WorkflowRunSucceeded: every step succeeded or was skipped.
	WorkflowRunSucceeded WorkflowRunPhase = "succeeded"
	// WorkflowRunSkipped: the run had nothing to do.
	WorkflowRunSkipped WorkflowRunPhase = "skipped"
	// WorkflowRunRollingBack: the run failed (or was terminated) and the
	// compensations of its succeeded steps run (Stepflow extension).
	WorkflowRunRollingBack WorkflowRunPhase = "rollingBack"
	// WorkflowRunRolledBack: every compensation succeeded.
	WorkflowRunRolledBack WorkflowRunPhase = "rolledBack"
	// WorkflowRunRollbackFailed: a compensation failed for good, or the
	// rollback was terminated; status.rollbackError says why.
	WorkflowRunRollbackFailed WorkflowRunPhase = "rollbackFailed"
)

// WorkflowStepPhase is the phase of a step, reported in
// status.steps[].phase.
type WorkflowStepPhase string

const (
	// WorkflowStepPhasePending: the step waits for its dependencies.
	WorkflowStepPhasePending WorkflowStepPhase = "pending"
	// WorkflowStepPhaseRunning: the step has started and is not done.
	WorkflowStepPhaseRunning WorkflowStepPhase = "running"
	// WorkflowStepPhaseSuspending: the step waits to be resumed.
	WorkflowStepPhaseSuspending WorkflowStepPhase = "suspending"
	// WorkflowStepPhaseSucceeded: the step is done; the steps after it may
	// start.
	WorkflowStepPhaseSucceeded WorkflowStepPhase = "succeeded"
	// WorkflowStepPhaseFailed: the step failed; status.steps[].message says
	// why.
	WorkflowStepPhaseFailed WorkflowStepPhase = "failed"
	// WorkflowStepPhaseSkipped: the step's if was false, or an earlier step
	// failed.
	WorkflowStepPhaseSkipped WorkflowStepPhase = "skipped"
	// WorkflowStepPhaseStopped: the step was stopped when its run was
	// terminated. KubeVela reports it; kept so such statuses still decode.
	WorkflowStepPhaseStopped WorkflowStepPhase = "stopped"
)

// Condition types set on a WorkflowRun's status.conditions.
const (
	// ConditionReady is True once the run's spec is valid and its step
	// types resolve to definitions.
	ConditionReady = "Ready"
	// ConditionSucceeded is True once the run succeeded.
	ConditionSucceeded = "Succeeded"
	// ConditionFailed is True once the run failed.
	ConditionFailed = "Failed"
	// ConditionSuspended is True while the run is suspended.
	ConditionSuspended = "Suspended"
)
