package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
)

// WorkflowMode says how a list of steps is scheduled. The schema enforces
// the values on WorkflowExecuteMode's fields but not on a step group's own
// mode, which KubeVela lets be null, and null fails an enum.
type WorkflowMode string

const (
	// WorkflowModeStep runs the steps one at a time, in the order listed.
	WorkflowModeStep WorkflowMode = "StepByStep"
	// WorkflowModeDAG starts every step whose dependsOn are all done, so
	// steps without dependencies run in parallel.
	WorkflowModeDAG WorkflowMode = "DAG"
)

// WorkflowExecuteMode picks the scheduling of the top-level steps and, apart
// from it, of the sub-steps inside each step group.
type WorkflowExecuteMode struct {
	// Steps is the mode of the top-level steps. Defaults to StepByStep.
	// +kubebuilder:validation:Enum=StepByStep;DAG
	// +optional
	Steps WorkflowMode `json:"steps,omitempty"`
	// SubSteps is the mode of the sub-steps of a step group. Defaults to DAG.
	// +kubebuilder:validation:Enum=StepByStep;DAG
	// +optional
	SubSteps WorkflowMode `json:"subSteps,omitempty"`
}

// WorkflowStep is one top-level step. A step of type step-group carries
// subSteps, which may not be groups themselves.
type WorkflowStep struct {
	WorkflowStepBase `json:",inline"`

	// Mode overrides the mode of this group's sub-steps: StepByStep or DAG.
	// Only meaningful on a step group.
	// +optional
	// +nullable
	Mode *WorkflowMode `json:"mode,omitempty"`

	// SubSteps are the steps of a step group.
	// +optional
	SubSteps []WorkflowStepBase `json:"subSteps,omitempty"`
}

// WorkflowStepBase is what a top-level step and a sub-step have in common.
type WorkflowStepBase struct {
	// Name identifies the step within its run; status, dependsOn and the
	// if expressions refer to it.
	// +optional
	Name string `json:"name,omitempty"`

	// Type names the WorkflowStepDefinition that runs the step.
	Type string `json:"type"`

	// Meta carries presentation data, such as a display alias.
	// +optional
	Meta *WorkflowStepMeta `json:"meta,omitempty"`

	// If is a CUE expression over inputs, context and status; the step is
	// skipped unless it is true. "always" runs the step even after an
	// earlier failure.
	// +optional
	If string `json:"if,omitempty"`

	// Timeout bounds the step's running time, as a Go duration ("30s", "5m").
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// DependsOn lists the names of steps that must finish first.
	// +optional
	DependsOn []string `json:"dependsOn,omitempty"`

	// Inputs fill the step's parameters from outputs of earlier steps.
	// +optional
	Inputs StepInputs `json:"inputs,omitempty"`

	// Outputs export values of the step under names later steps can read.
	// +optional
	Outputs StepOutputs `json:"outputs,omitempty"`

	// Properties are the parameters of the step definition.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Properties *runtime.RawExtension `json:"properties,omitempty"`

	// Retry says how often a step whose op call failed with a retryable
	// error (no response, a reset connection, ...) is tried again, each time
	// as a new attempt. Without it the step gets the default, as KubeVela:
	// 10 retries (11 attempts in all), waiting 1s, 2s, 4s, ... up to 5m.
	// Failures a retry cannot fix are final at once, with or without a
	// policy: #Fail, a template or parameter error, a permanent op error, a
	// timeout.
	//
	// Stepflow extension: not part of KubeVela's shape.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`

	// Compensate is the step that undoes this one when the run rolls back
	// (spec.onFailure: Compensate). Without it, the compensation the
	// step's definition declares applies, if any.
	//
	// Stepflow extension: not part of KubeVela's shape.
	// +optional
	Compensate *Compensation `json:"compensate,omitempty"`
}

// WorkflowStepMeta is metadata of a step that does not change what it does.
type WorkflowStepMeta struct {
	// Alias is a display name for the step.
	// +optional
	Alias string `json:"alias,omitempty"`
}

// StepInputs are the inputs of a step.
type StepInputs []InputItem

// StepOutputs are the outputs of a step.
type StepOutputs []OutputItem

// InputItem copies a named output of an earlier step into the step.
type InputItem struct {
	// From is the name of the output to read.
	From string `json:"from"`
	// ParameterKey is the path in properties where the value goes, such as
	// "spec.image". Without it the value is only visible as inputs[from].
	// +optional
	ParameterKey string `json:"parameterKey,omitempty"`
}

// OutputItem names a value of the step so that later steps can read it.
// Outputs live in the run's status, which must fit in one API object: one
// output value is at most 128 KiB as JSON, and the output values and the
// input values the steps recorded are at most 512 KiB for the whole run. A
// step whose outputs (or inputs) would go over fails, with reason
// OutputError (or InputError) and a message naming the value and its size.
type OutputItem struct {
	// Name is the name later steps read the value under.
	Name string `json:"name"`
	// ValueFrom is a CUE expression over the evaluated step that gives the
	// value, such as "output.value.status.phase".
	ValueFrom string `json:"valueFrom"`
}

// RetryPolicy says how often and how soon a step whose op failed with a
// retryable error runs again.
//
// Stepflow extension: not part of KubeVela's shape.
type RetryPolicy struct {
	// Limit is the number of retries after the first attempt: 0 means none
	// (the first retryable error fails the step), 3 means up to 4 attempts.
	// Unset, it is the default of 10.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Limit *int32 `json:"limit,omitempty"`

	// Backoff spaces the retries out. Without it, retries wait the
	// controller's default backoff.
	// +optional
	Backoff *RetryBackoff `json:"backoff,omitempty"`
}

// RetryBackoff is an exponential backoff: retry n waits
// min(initial * factor^(n-1), max).
//
// Stepflow extension: not part of KubeVela's shape.
type RetryBackoff struct {
	// Initial is the wait before the first retry, as a Go duration ("10s").
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	Initial string `json:"initial,omitempty"`

	// Factor multiplies the wait after each retry, as a decimal ("2", "1.5").
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +optional
	Factor string `json:"factor,omitempty"`

	// Max caps the wait between retries, as a Go duration ("5m").
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	Max string `json:"max,omitempty"`
}
