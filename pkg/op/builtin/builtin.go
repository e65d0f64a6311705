// Package builtin implements the ops that steer a step rather than touch the
// world: #ConditionalWait, #Suspend, #Break, #Fail, #Message (provider
// "builtin"), #Terminate (ends the whole run as terminated), #DoVar (run variables) and #Log (provider "util").
//
// The control ops are pure: they turn their parameters into an op.Stop or a
// message. Whether a resumed suspend suspends again is not their concern;
// the executor's runner decides that before calling them.
package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Family is the "builtin" provider.
type Family struct{ ops map[string]op.Op }

// New returns the builtin ops.
func New() *Family {
	return &Family{ops: map[string]op.Op{
		"wait":    &waitOp{},
		"suspend": &suspendOp{},
		"break":   &stopOp{kind: op.Break},
		"fail":    &stopOp{kind: op.Fail},
		// terminate is a barrier like fail: its stop ends the run, not
		// only the step (op.Terminate).
		"terminate": &stopOp{kind: op.Terminate},
		"message":   &messageOp{},
		"var":       &varOp{},
	}}
}

func (f *Family) Provider() string      { return "builtin" }
func (f *Family) Ops() map[string]op.Op { return f.ops }

var _ op.Family = (*Family)(nil)

var _ = []op.Pure{&waitOp{}, &stopOp{}, &messageOp{}}

type messageParams struct {
	Message string `json:"message"`
}

type waitParams struct {
	Continue bool   `json:"continue"`
	Message  string `json:"message"`
}

type waitOp struct{}

func (*waitOp) NewParams() any     { return &waitParams{} }
func (*waitOp) Class(any) op.Class { return op.Control }
func (*waitOp) Pure()              {}
func (*waitOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p := call.Params.(*waitParams)
	if p.Continue {
		return op.Result{}, nil
	}
	return op.Result{Stop: &op.Stop{Kind: op.Wait, Message: p.Message}, Message: p.Message}, nil
}

type suspendParams struct {
	Duration string `json:"duration"`
	Message  string `json:"message"`
}

type suspendOp struct{}

func (*suspendOp) NewParams() any     { return &suspendParams{} }
func (*suspendOp) Class(any) op.Class { return op.Control }
func (*suspendOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p := call.Params.(*suspendParams)
	var d time.Duration
	if p.Duration != "" {
		var err error
		if d, err = time.ParseDuration(p.Duration); err != nil || d < 0 {
			return op.Result{}, op.Permanentf("invalid suspend duration %q: want a Go duration such as \"30s\" or \"2m15s\"", p.Duration)
		}
	}
	return op.Result{Stop: &op.Stop{Kind: op.Suspend, Message: p.Message, Duration: d}, Message: p.Message}, nil
}

type stopOp struct{ kind op.StopKind }

func (*stopOp) NewParams() any     { return &messageParams{} }
func (*stopOp) Class(any) op.Class { return op.Control }
func (*stopOp) Pure()              {}
func (s *stopOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p := call.Params.(*messageParams)
	return op.Result{Stop: &op.Stop{Kind: s.kind, Message: p.Message}, Message: p.Message}, nil
}

type messageOp struct{}

func (*messageOp) NewParams() any     { return &messageParams{} }
func (*messageOp) Class(any) op.Class { return op.Idempotent }
func (*messageOp) Pure()              {}
func (*messageOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	return op.Result{Message: call.Params.(*messageParams).Message}, nil
}

type varParams struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Value  any    `json:"value"`
}

type varOp struct{}

func (*varOp) NewParams() any     { return &varParams{} }
func (*varOp) Class(any) op.Class { return op.Idempotent }
func (*varOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p := call.Params.(*varParams)
	if call.Env.Vars == nil {
		return op.Result{}, op.Permanentf("run variables are not available here")
	}
	if p.Path == "" {
		return op.Result{}, op.Permanentf("#DoVar needs a path")
	}
	switch p.Method {
	case "", "Get":
		v, ok := call.Env.Vars.GetVar(p.Path)
		if !ok {
			return op.Result{Returns: map[string]any{}}, nil
		}
		return op.Result{Returns: map[string]any{"value": v}}, nil
	case "Put":
		if err := call.Env.Vars.PutVar(p.Path, p.Value); err != nil {
			return op.Result{}, err
		}
		return op.Result{Returns: map[string]any{"value": p.Value}}, nil
	}
	return op.Result{}, op.Permanentf("#DoVar method %q: want Get or Put", p.Method)
}

// LogFamily is the #Log op, under provider "util".
type LogFamily struct{ ops map[string]op.Op }

// NewLog returns the log op family.
func NewLog() *LogFamily { return &LogFamily{ops: map[string]op.Op{"log": &logOp{}}} }

func (f *LogFamily) Provider() string      { return "util" }
func (f *LogFamily) Ops() map[string]op.Op { return f.ops }

type logParams struct {
	Data   any            `json:"data"`
	Level  int            `json:"level"`
	Source map[string]any `json:"source"`
}

type logOp struct{}

func (*logOp) NewParams() any     { return &logParams{} }
func (*logOp) Class(any) op.Class { return op.Idempotent }
func (*logOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p := call.Params.(*logParams)
	if call.Env.Log == nil || p.Data == nil {
		return op.Result{}, nil
	}
	line, ok := p.Data.(string)
	if !ok {
		b, err := json.Marshal(p.Data)
		if err != nil {
			return op.Result{}, op.Permanentf("#Log data: %v", err)
		}
		line = string(b)
	}
	call.Env.Log.StepLog(call.Step, p.Level, line)
	return op.Result{}, nil
}

// MapVars is an in-memory op.Vars, for one-off evaluations and tests.
type MapVars map[string]any

func (m MapVars) GetVar(path string) (any, bool) { v, ok := m[path]; return v, ok }
func (m MapVars) PutVar(path string, v any) error {
	if m == nil {
		return fmt.Errorf("variable store is nil")
	}
	m[path] = v
	return nil
}
