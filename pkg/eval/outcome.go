package eval

import (
	"errors"
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
	// Terminating: a #Terminate stopped the step; the whole run ends
	// terminated with Message (the step itself fails).
	Terminating Phase = "terminating"
	// Broken: an op failed in a way a retry may fix (network, API server).
	Broken Phase = "broken"
	// Interrupted: the evaluation was cut short by trouble that is not the
	// step's own: the worker process evaluating it died, or was stopped for
	// another evaluation's overrun. Evaluate the same attempt again soon: it
	// is no new attempt and counts no retry, and the journal replays the
	// effects it already had.
	Interrupted Phase = "interrupted"
)

// Reasons for Failed and Broken outcomes.
const (
	ReasonTemplate  = "TemplateError"  // the template does not compile or unify
	ReasonParameter = "ParameterError" // a parameter is missing or of the wrong type
	ReasonOp        = "OpError"        // an op call failed
	ReasonFail      = "Fail"           // the template called #Fail
	ReasonTerminate = "Terminate"      // the template called #Terminate (a Terminating outcome)
	ReasonTimeout   = "EvalTimeout"    // CUE evaluation did not finish in time
	ReasonMemory    = "EvalMemory"     // CUE evaluation went over its memory bound
	// ReasonInterrupted: an Interrupted outcome, or, on a Failed one, an
	// attempt whose evaluations were interrupted too often to go on.
	ReasonInterrupted = "EvalInterrupted"
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
	// Outputs are the values of Request.Outputs, in order, read from the
	// evaluated template when the step succeeded.
	Outputs []OutputValue
	// Data is the concrete part of Value as plain Go data (Value.Data),
	// when Request.Data asked for it, and for an outcome that failed
	// (KeptOnFailure), so that the step can be debugged after the fact.
	Data any
}

// KeptOnFailure reports whether an outcome's Data is read without
// Request.Data asking for it: a failed, broken or terminating outcome,
// except one that overran its time or memory bound (reading that value
// could overrun again).
func (o *Outcome) KeptOnFailure() bool {
	switch o.Phase {
	case Failed, Broken, Terminating:
		return o.Reason != ReasonTimeout && o.Reason != ReasonMemory
	}
	return false
}

// ErrInterrupted is wrapped by the error of a Check or Condition that
// could not be carried out for trouble that is not the template's (an
// evaluator process died, none could be started). Trying again later may
// work.
var ErrInterrupted = errors.New("evaluation interrupted")

// OverrunError is a Check or Condition that went over its time or memory
// bound (Reason is ReasonTimeout or ReasonMemory). Retrying it as it is
// does not help.
type OverrunError struct {
	Reason  string
	Message string
}

func (e *OverrunError) Error() string { return e.Message }

// OutputValue is the value of one expression of Request.Outputs, or why it
// has none.
type OutputValue struct {
	Value any
	Err   error
}

// readValue reads what req asked for from the evaluated template before
// the evaluation ends, so that a caller that cannot reach the CUE value
// (another process) gets it with the outcome.
func (o *Outcome) readValue(req Request) {
	if o.Value == nil {
		return
	}
	if req.Data || o.KeptOnFailure() {
		if d, err := o.Value.Data(); err == nil {
			o.Data = d
		}
	}
	if o.Phase != Succeeded {
		return
	}
	for _, expr := range req.Outputs {
		x, err := o.Value.Eval(expr)
		o.Outputs = append(o.Outputs, OutputValue{Value: x, Err: err})
	}
}

// CallRecord is one op call made during an evaluation.
type CallRecord struct {
	Op    op.Name  `json:"op"`
	Path  string   `json:"path"`
	Class op.Class `json:"-"`
	// Stop is the stop the call made, if any ("wait", "suspend", ...).
	Stop string `json:"stop,omitempty"`
}
