package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// FailurePolicy says what a run does when it fails or is terminated.
//
// Stepflow extension.
// +kubebuilder:validation:Enum="";None;Compensate
type FailurePolicy string

const (
	// FailurePolicyNone leaves what succeeded in place (the default).
	FailurePolicyNone FailurePolicy = "None"
	// FailurePolicyCompensate rolls the run back: the compensations of
	// every step that succeeded run, in reverse dependency order.
	FailurePolicyCompensate FailurePolicy = "Compensate"
)

// Orchestration is what a run (or the Workflow it names) says about how it
// is scheduled and rolled back, beside its steps. A run's own fields win
// over its Workflow's, field by field.
//
// Stepflow extension.
type Orchestration struct {
	// Queue names the queue the run waits in when the controller caps how
	// many runs run at once (default "default"). See docs/controller.md.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Queue string `json:"queue,omitempty"`

	// OnFailure is Compensate to roll the run back when a step fails for
	// good: the compensations of the steps that succeeded run in reverse
	// dependency order (default None).
	// +optional
	OnFailure FailurePolicy `json:"onFailure,omitempty"`

	// OnTerminate is Compensate to roll the run back when it is terminated
	// (default None).
	// +optional
	OnTerminate FailurePolicy `json:"onTerminate,omitempty"`

	// Callback hears the run's transitions.
	// +optional
	Callback *Callback `json:"callback,omitempty"`
}

// CallbackEvent is a transition a callback can hear.
// +kubebuilder:validation:Enum=runStarted;runSucceeded;runFailed;runTerminated;runSuspended;runResumed;runRollingBack;runRolledBack;runRollbackFailed;stepStarted;stepSucceeded;stepFailed;stepSkipped;stepSuspended
type CallbackEvent string

// The transitions a callback hears (docs/controller.md says when each is
// sent).
const (
	CallbackRunStarted        CallbackEvent = "runStarted"
	CallbackRunSucceeded      CallbackEvent = "runSucceeded"
	CallbackRunFailed         CallbackEvent = "runFailed"
	CallbackRunTerminated     CallbackEvent = "runTerminated"
	CallbackRunSuspended      CallbackEvent = "runSuspended"
	CallbackRunResumed        CallbackEvent = "runResumed"
	CallbackRunRollingBack    CallbackEvent = "runRollingBack"
	CallbackRunRolledBack     CallbackEvent = "runRolledBack"
	CallbackRunRollbackFailed CallbackEvent = "runRollbackFailed"
	CallbackStepStarted       CallbackEvent = "stepStarted"
	CallbackStepSucceeded     CallbackEvent = "stepSucceeded"
	CallbackStepFailed        CallbackEvent = "stepFailed"
	CallbackStepSkipped       CallbackEvent = "stepSkipped"
	CallbackStepSuspended     CallbackEvent = "stepSuspended"
)

// Callback POSTs each transition of a run, as JSON, to a URL.
//
// Stepflow extension.
type Callback struct {
	// URL receives the POSTs.
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`

	// HeadersFromSecret names a Secret in the run's namespace whose keys
	// and values are sent as HTTP headers (an Authorization token).
	// +optional
	HeadersFromSecret string `json:"headersFromSecret,omitempty"`

	// Events are the transitions to send; without them, all.
	// +optional
	Events []CallbackEvent `json:"events,omitempty"`
}

// Compensation is the step that undoes a step: its own type and
// properties. It sees the original step's properties, inputs and outputs
// in context.compensating.
//
// Stepflow extension.
type Compensation struct {
	// Type names the WorkflowStepDefinition of the compensating step.
	// Without it, the compensation its definition declares applies.
	// +optional
	Type string `json:"type,omitempty"`

	// Properties are the compensating step's parameters. Without them:
	// for the definition's default type, the default's properties; else
	// the original step's properties, with its inputs at their
	// parameterKeys.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Properties *runtime.RawExtension `json:"properties,omitempty"`

	// Disabled switches off the compensation the step's definition
	// declares.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// Timeout bounds the compensating step, as a Go duration counted from
	// its first attempt; past it, the compensation fails (reason Timeout).
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// Retry is the compensating step's own retry policy; without one, the
	// default of steps.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
}

// CompensationStatus is the state of a step's compensation, once the run
// rolls back.
//
// Stepflow extension.
type CompensationStatus struct {
	// ID identifies the compensation's attempt in the journal.
	// +optional
	ID string `json:"id,omitempty"`
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Phase WorkflowStepPhase `json:"phase,omitempty"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// +optional
	Retries int32 `json:"retries,omitempty"`
	// +optional
	FirstExecuteTime metav1.Time `json:"firstExecuteTime,omitempty"`
	// +optional
	LastExecuteTime metav1.Time `json:"lastExecuteTime,omitempty"`
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`
}

// CallbackStatus is how the delivery of a run's transitions to its
// callbacks stands.
//
// Stepflow extension.
type CallbackStatus struct {
	// Delivered is the idempotency key of the last transition delivered.
	// +optional
	Delivered string `json:"delivered,omitempty"`
	// DeliveredTime is when it was delivered.
	// +optional
	DeliveredTime *metav1.Time `json:"deliveredTime,omitempty"`
	// Pending counts the transitions not delivered yet.
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// LastError is the last failed delivery's error, until one succeeds.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// LastErrorTime is when it failed.
	// +optional
	LastErrorTime *metav1.Time `json:"lastErrorTime,omitempty"`
	// Outbox holds the transitions not delivered yet, oldest first. Each
	// is added by the same status write that makes the transition, and
	// removed once delivered, so a controller that dies in between
	// delivers it after it restarts. Bounded (docs/controller.md): when
	// full, the oldest is dropped and counted in Dropped.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	Outbox []CallbackTransition `json:"outbox,omitempty"`
	// Dropped counts the transitions dropped from a full outbox, never
	// delivered.
	// +optional
	Dropped int32 `json:"dropped,omitempty"`
	// Suspended is status.suspend as the callback last heard it: a
	// suspend or resume written by anyone (stepflow suspend, the API) is
	// a transition once the controller sees status.suspend differ.
	// +optional
	Suspended bool `json:"suspended,omitempty"`
}

// CallbackTransition is one transition waiting to be POSTed: what the
// callback body says that the run itself no longer does once it moved on.
//
// Stepflow extension.
type CallbackTransition struct {
	// Key is the transition's Idempotency-Key: the run's UID, the event,
	// and the step attempt's id (or the run's restart count).
	Key string `json:"key"`
	// Event is the transition.
	Event CallbackEvent `json:"event"`
	// Time is when it happened.
	Time metav1.Time `json:"time"`
	// Phase is the run's phase after it.
	// +optional
	Phase WorkflowRunPhase `json:"phase,omitempty"`
	// RunError is the run's message when the run failed or was
	// terminated (truncated to 1 KiB).
	// +optional
	RunError string `json:"runError,omitempty"`
	// RollbackError is the run's rollbackError (truncated to 1 KiB).
	// +optional
	RollbackError string `json:"rollbackError,omitempty"`
	// Step is the step of a step event.
	// +optional
	Step *CallbackStep `json:"step,omitempty"`
}

// CallbackStep is the step a step event is about.
//
// Stepflow extension.
type CallbackStep struct {
	// ID is the step attempt's id.
	ID string `json:"id"`
	// Name is the step's name; a sub-step's is "group/sub".
	Name string `json:"name"`
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Phase WorkflowStepPhase `json:"phase,omitempty"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is the step's message (truncated to 1 KiB).
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
}

// QueueStatus is where a run waits before it starts.
//
// Stepflow extension.
type QueueStatus struct {
	// Name is the queue's name.
	Name string `json:"name"`
	// Position is the run's place among the runs waiting in its queue,
	// from 1, while it waits.
	// +optional
	Position int32 `json:"position,omitempty"`
	// Since is when the run started waiting.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// Admitted is when it was let run.
	// +optional
	Admitted *metav1.Time `json:"admitted,omitempty"`
}
