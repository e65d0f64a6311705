package eval

import (
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Phase is the one outcome of evaluating a step.
type Phase string

const (
	// Succeeded: every op ran; Value holds the evaluated template.
	Succeeded Phase = "succeeded"
	// Waiting: a #ConditionalWait is not met; evaluate again later.
	Waiting Phase = "waiting"
	// Suspending: a #Suspend stopped the step, for SuspendFor if non-zero.
	Suspending Phase = "suspending"
	// Failed: the step cannot succeed as it is (#Fail, a template error, bad
	// parameters, a permanent op error). Retrying does not help.
	Failed Phase = "failed"
	// Broken: an op failed in a way a retry may fix (network, API server).
	Broken Phase = "broken"
)

// Reasons for Failed and Broken outcomes.
const (
	ReasonTemplate  = "TemplateError"  // the template does not compile or unify
	ReasonParameter = "ParameterError" // a parameter is missing or of the wrong type
	ReasonOp        = "OpError"        // an op call failed
	ReasonFail      = "Fail"           // the template called #Fail
	ReasonTimeout   = "EvalTimeout"    // CUE evaluation did not finish in time
)

// Outcome is the result of one evaluation of a step.
type Outcome struct {
	Phase   Phase
	Reason  string
	Message string
	// SuspendFor is a timed suspend's duration.
	SuspendFor time.Duration
	// Value is the evaluated template, for outputs and debugging. It is set
	// whenever evaluation got past compilation.
	Value *Value
	// Calls are the op calls made, in the order they ran.
	Calls []CallRecord
	// Err is the op error behind a Broken or op-failed outcome.
	Err error
}

// CallRecord is one op call made during an evaluation.
type CallRecord struct {
	Op    op.Name  `json:"op"`
	Path  string   `json:"path"`
	Class op.Class `json:"-"`
	// Stop is the stop the call made, if any ("wait", "suspend", ...).
	Stop string `json:"stop,omitempty"`
}
