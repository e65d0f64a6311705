package op

import (
	"context"
	"fmt"
	"time"
)

// Name identifies an op by the #provider and #do fields of its CUE schema.
type Name struct {
	Provider string
	Do       string
}

func (n Name) String() string { return n.Provider + "." + n.Do }

// Class says what an op does to the world, and so how the executor treats it
// when a step is evaluated again (see pkg/journal for the rule).
type Class int

const (
	// Idempotent ops (reads, applies, GET) run again on every evaluation.
	Idempotent Class = iota
	// Effect ops (POST, delete, notifications) run once per step attempt;
	// later evaluations replay the recorded result.
	Effect
	// Control ops only decide the step's fate (wait, suspend, fail, ...).
	Control
)

func (c Class) String() string {
	switch c {
	case Idempotent:
		return "idempotent"
	case Effect:
		return "effect"
	case Control:
		return "control"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Op is one operation a template can call.
type Op interface {
	// NewParams returns a pointer to a zero params struct. The evaluator
	// decodes the call's CUE parameters into it; the struct's json tags name
	// the CUE fields.
	NewParams() any
	// Class reports how a call with these (decoded) params behaves on re-entry.
	Class(params any) Class
	// Run performs the call. It must honour ctx cancellation.
	Run(ctx context.Context, call *Call) (Result, error)
}

// Pure is implemented by ops whose result is a function of their params
// alone: no I/O, no Env, no Step, nothing a runner adds (a journal passes
// their calls through). An evaluator may run them where it evaluates
// instead of sending them to its runner: an evaluator worker process
// (pkg/sandbox) does, saving a round trip to the controller per call.
type Pure interface {
	Op
	// Pure marks the op; it does nothing.
	Pure()
}

// Step identifies the step attempt an op call belongs to.
type Step struct {
	RunUID    string
	RunName   string
	Namespace string
	StepName  string
	// StepID is the id of this step attempt (context.stepSessionID).
	StepID string
	// ServiceAccount is the ServiceAccount, in Namespace, whose rights the
	// call acts with (spec.serviceAccountName of the run or its Workflow,
	// else the controller's default). Ops that reach a cluster or read a
	// Secret act as this identity; "" means the default.
	ServiceAccount string
}

// Call is one op call found in a step's evaluated template.
type Call struct {
	Name Name
	// Path is the CUE path of the call in the template, e.g. "notify.do".
	Path string
	// Op is the resolved implementation; Params is the value its NewParams
	// returned, decoded from the template.
	Op     Op
	Params any
	// Class is the call's class: the op's own, unless the template overrode it.
	Class Class
	Step  Step
	Env   Env
}

// Key is the call's identity within a run: stepId and op path.
func (c *Call) Key() string { return c.Step.StepID + "/" + c.Path }

// Describer is implemented by an op whose calls differ in kind by their
// parameters, as an HTTP call by its method: a POST and a DELETE are two
// different effects even though both are http.do.
type Describer interface {
	// Describe names the kind of call params make ("POST").
	Describe(params any) string
}

// Kind names what the call does: the op's name, followed by its
// Describe when the op is a Describer ("http.do POST"). The journal keeps
// it with each effect it records, so that a replay stays with the kind of
// call that was made.
func (c *Call) Kind() string {
	if d, ok := c.Op.(Describer); ok && c.Params != nil {
		if k := d.Describe(c.Params); k != "" {
			return c.Name.String() + " " + k
		}
	}
	return c.Name.String()
}

// Env carries the per-run services some ops need. Any field may be nil; an op
// that needs a missing one fails with a clear error.
type Env struct {
	Vars Vars
	Log  LogSink
}

// Vars is the run's variable store (#DoVar, context.*).
type Vars interface {
	GetVar(path string) (any, bool)
	PutVar(path string, value any) error
}

// LogSink receives #Log output of a step.
type LogSink interface {
	StepLog(step Step, level int, line string)
}

// LogSinkFunc adapts a function to LogSink.
type LogSinkFunc func(step Step, level int, line string)

// StepLog implements LogSink.
func (f LogSinkFunc) StepLog(step Step, level int, line string) { f(step, level, line) }

var _ LogSink = LogSinkFunc(nil)

// Result is what a call returns.
type Result struct {
	// Returns is filled into the call's $returns; nil fills nothing.
	Returns any
	// Stop, when set, ends the evaluation of the step at this call.
	Stop *Stop
	// Message, when set, becomes the step's message.
	Message string
}

// StopKind is the way a control op ends a step's evaluation.
type StopKind int

const (
	// Wait: the step is not done; evaluate it again later.
	Wait StopKind = iota + 1
	// Suspend: the step waits for a resume, or for Duration to pass.
	Suspend
	// Fail: the step failed for good.
	Fail
	// Break: the step ends successfully here; later ops do not run.
	Break
	// Terminate: the whole run ends, terminated; the step fails and later
	// steps never run.
	Terminate
)

func (k StopKind) String() string {
	switch k {
	case Wait:
		return "wait"
	case Suspend:
		return "suspend"
	case Fail:
		return "fail"
	case Break:
		return "break"
	case Terminate:
		return "terminate"
	}
	return fmt.Sprintf("StopKind(%d)", int(k))
}

// Stop ends a step's evaluation.
type Stop struct {
	Kind    StopKind
	Message string
	// Duration is how long a Suspend lasts before it resumes by itself; zero
	// means until resumed.
	Duration time.Duration
}

// Runner runs op calls. Registry.Runner gives the base runner; the executor
// wraps it (journal, replay).
type Runner interface {
	Run(ctx context.Context, call *Call) (Result, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, call *Call) (Result, error)

// Run implements Runner.
func (f RunnerFunc) Run(ctx context.Context, call *Call) (Result, error) { return f(ctx, call) }

var _ Runner = RunnerFunc(nil)

// ParamsOf returns the call's decoded params as the *T its op's NewParams
// made; anything else (a runner that built the call wrongly) is a
// permanent error naming the op.
func ParamsOf[T any](call *Call) (*T, error) {
	p, ok := call.Params.(*T)
	if !ok || p == nil {
		return nil, Permanentf("%s: params are %T, want *%T", call.Name, call.Params, *new(T))
	}
	return p, nil
}
