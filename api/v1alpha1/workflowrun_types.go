package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// WorkflowRun is one execution of a list of steps.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={oam},shortName={wr}
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.status`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="STEPS",type=string,JSONPath=`.status.progress`,priority=1,description="Top-level steps done out of all"
// +kubebuilder:printcolumn:name="DURATION",type=string,JSONPath=`.status.duration`,priority=1,description="How long the run took, once finished"
// +kubebuilder:printcolumn:name="MESSAGE",type=string,JSONPath=`.status.message`,priority=1
type WorkflowRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec WorkflowRunSpec `json:"spec,omitempty"`
	// +optional
	Status WorkflowRunStatus `json:"status,omitempty"`
}

// WorkflowRunSpec says what to run. Exactly one of WorkflowSpec and
// WorkflowRef is expected; WorkflowSpec wins when both are set.
type WorkflowRunSpec struct {
	// Context is the initial value of the run's context, readable by every
	// step and writable by steps that export to it.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Context *runtime.RawExtension `json:"context,omitempty"`

	// Mode overrides the execution mode; without it the referenced
	// Workflow's mode applies, then the defaults (StepByStep, sub-steps DAG).
	// +optional
	Mode *WorkflowExecuteMode `json:"mode,omitempty"`

	// WorkflowSpec holds the steps inline.
	// +optional
	WorkflowSpec *WorkflowSpec `json:"workflowSpec,omitempty"`

	// WorkflowRef names a Workflow in the run's namespace to take the steps
	// from.
	// +optional
	WorkflowRef string `json:"workflowRef,omitempty"`

	// ServiceAccountName is the ServiceAccount, in the run's own namespace,
	// whose rights the run's ops act with: every object a step reads or
	// writes and every Secret an op reads. Without it the referenced
	// Workflow's applies, then the controller's default (stepflow-runner).
	// Stepflow extension.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Orchestration: queue, rollback and callback (Stepflow extension);
	// each field set here wins over the referenced Workflow's.
	Orchestration `json:",inline"`

	// TTLSecondsAfterFinished deletes the run, and what it owns, this many
	// seconds after it finished (Stepflow extension). Without it the
	// controller's default applies (docs/controller.md).
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// WorkflowRunStatus is what the controller has observed and done so far.
// The field names are KubeVela's, so its CLI and dashboards read them.
type WorkflowRunStatus struct {
	// Conditions are Ready, Succeeded, Failed and Suspended. Every run the
	// controller has looked at has all four: Ready is False when its spec
	// cannot run (reason Invalid or WorkflowNotFound) or a step's type
	// names no definition (DefinitionNotFound), and Unknown (WriteRefused)
	// for a run whose first status write was refused for size; Failed is
	// True for a failed or terminated run (reason Failed or Terminated),
	// Succeeded for a succeeded one, Suspended while it waits to be
	// resumed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Mode is the execution mode in effect.
	// +optional
	Mode WorkflowExecuteMode `json:"mode"`

	// Phase is the phase of the run. KubeVela names the field "status".
	// +optional
	Phase WorkflowRunPhase `json:"status,omitempty"`

	// Message says why the run is in its phase.
	// +optional
	Message string `json:"message,omitempty"`

	// Suspend is true while the run is suspended, by a step or from
	// outside, and waits to be resumed.
	// +optional
	Suspend bool `json:"suspend"`

	// SuspendState says who suspended the run: Operator (from outside:
	// nothing runs until the run is resumed; a bare suspend=true counts as
	// this) or Steps (a step holds it; the other steps go on).
	// +optional
	SuspendState string `json:"suspendState,omitempty"`

	// Terminated is true once the run was stopped for good, by a user or a
	// failed step.
	// +optional
	Terminated bool `json:"terminated"`

	// Finished is true once no step will run again.
	// +optional
	Finished bool `json:"finished"`

	// ContextBackend is the object, usually a ConfigMap, that holds the
	// run's context and the values steps exported.
	// +optional
	ContextBackend *corev1.ObjectReference `json:"contextBackend,omitempty"`

	// Steps are the statuses of the top-level steps that have started or
	// been decided.
	// +optional
	Steps []WorkflowStepStatus `json:"steps,omitempty"`

	// StartTime is when the run started executing.
	// +optional
	StartTime metav1.Time `json:"startTime,omitempty"`

	// EndTime is when the run finished.
	// +optional
	EndTime metav1.Time `json:"endTime,omitempty"`

	// Duration is how long the run took, from StartTime to EndTime (whole
	// seconds, as they are), set once the run finished (Stepflow
	// extension).
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`

	// Progress is how many of the run's top-level steps are done
	// (succeeded, failed, skipped) out of all of them, as "2/5" (Stepflow
	// extension).
	// +optional
	Progress string `json:"progress,omitempty"`

	// RestartCount counts restarts of the run (Stepflow extension). It is
	// part of every step attempt's id, so a restarted run's attempts never
	// reuse an earlier attempt's journal.
	// +optional
	RestartCount int32 `json:"restartCount,omitempty"`

	// RollbackError says why the rollback failed or stopped, once the run
	// rolled back with phase rollbackFailed: the step whose compensation
	// failed, the compensation's type and its error, or that the rollback
	// was terminated and which step was being compensated (Stepflow
	// extension).
	// +optional
	RollbackError string `json:"rollbackError,omitempty"`

	// Queue is where the run waited, or waits, for a running slot
	// (Stepflow extension).
	// +optional
	Queue *QueueStatus `json:"queue,omitempty"`

	// Callback is how delivery to the run's callbacks stands (Stepflow
	// extension).
	// +optional
	Callback *CallbackStatus `json:"callback,omitempty"`
}

// WorkflowStepStatus is the status of a top-level step and of its sub-steps.
type WorkflowStepStatus struct {
	StepStatus `json:",inline"`

	// SubStepsStatus are the statuses of a step group's sub-steps.
	// +optional
	SubStepsStatus []StepStatus `json:"subSteps,omitempty"`
}

// StepStatus is the status of one step or sub-step.
type StepStatus struct {
	// ID identifies the step's entry, unique within the run.
	ID string `json:"id"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Phase WorkflowStepPhase `json:"phase,omitempty"`
	// Message is a human-readable account of the phase.
	// +optional
	Message string `json:"message,omitempty"`
	// Reason is a CamelCase word for the phase, such as Timeout or Skip.
	// +optional
	Reason string `json:"reason,omitempty"`
	// ExtMessage is what the last operator who terminated, suspended or
	// resumed this step said (Stepflow extension; SREWorks' extMessage).
	// +optional
	ExtMessage string `json:"extMessage,omitempty"`
	// FirstExecuteTime is when the step first started.
	// +optional
	FirstExecuteTime metav1.Time `json:"firstExecuteTime,omitempty"`
	// LastExecuteTime is when the step was last evaluated.
	// +optional
	LastExecuteTime metav1.Time `json:"lastExecuteTime,omitempty"`

	// Attempt counts the attempts started, the first one included, so
	// attempt-1 retries have been made.
	//
	// Stepflow extension.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`

	// SuspendedBy is the op path of the #Suspend that suspended this step
	// attempt, while it is suspended (Stepflow extension).
	// +optional
	SuspendedBy string `json:"suspendedBy,omitempty"`

	// Resumed lists the op paths of the #Suspends of this attempt that were
	// resumed; they do not suspend it again (Stepflow extension). Kept in
	// the status, with the suspension itself, so no crash can separate the
	// two.
	// +optional
	Resumed []string `json:"resumed,omitempty"`

	// Retries counts the attempts made after errors since the step last
	// started, or was retried from, or evaluated without error; the retry
	// limit applies to it (Stepflow extension).
	// +optional
	Retries int32 `json:"retries,omitempty"`

	// JournalFailures counts the evaluations of this attempt in a row whose
	// journal record could not be saved (Stepflow extension). Each such
	// evaluation may have sent its effect; past a bound the step fails with
	// reason JournalError instead of sending it again.
	// +optional
	JournalFailures int32 `json:"journalFailures,omitempty"`

	// NextAttemptTime is when the next retry is due, while the step waits
	// out its backoff.
	//
	// Stepflow extension.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`

	// ResumeTime is when a suspended step resumes by itself, for a suspend
	// with a duration.
	//
	// Stepflow extension.
	// +optional
	ResumeTime *metav1.Time `json:"resumeTime,omitempty"`

	// Outputs are the values the step exported under its outputs names,
	// copied here once the step succeeded. Only small values belong here;
	// the context backend holds them all.
	//
	// Stepflow extension.
	// +optional
	// +listType=map
	// +listMapKey=name
	Outputs []StepOutputValue `json:"outputs,omitempty"`

	// Inputs are the input values of the step's attempts (Stepflow
	// extension): resolved when it first runs and kept for its later
	// attempts, so a retry, or a retry from this step, runs with the
	// inputs its last attempt had; a retry from a step upstream of it
	// resolves them again. The run context variables an attempt saw are
	// kept with the run's journal (journal.SnapshotVars).
	// +optional
	// +listType=map
	// +listMapKey=name
	Inputs []StepOutputValue `json:"inputs,omitempty"`

	// Compensation is the state of the step's compensation, once the run
	// rolls back (Stepflow extension).
	// +optional
	Compensation *CompensationStatus `json:"compensation,omitempty"`
}

// StepOutputValue is the value of one named output of a step.
//
// Stepflow extension.
type StepOutputValue struct {
	// Name is the output's name, from the step's outputs.
	Name string `json:"name"`
	// Value is any JSON value: object, list, string, number or bool.
	// +optional
	Value *apiextensionsv1.JSON `json:"value,omitempty"`
}

// WorkflowRunList is a list of WorkflowRuns.
//
// +kubebuilder:object:root=true
type WorkflowRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowRun `json:"items"`
}
