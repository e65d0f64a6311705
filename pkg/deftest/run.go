package deftest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// ReasonOutput is the reason of a succeeded step whose outputs cannot be
// read: the engine fails it so (engine.ReasonOutput).
const ReasonOutput = "OutputError"

// The context a case gets when its context.json does not say.
var defaultContext = map[string]any{
	"name":          "app-v3",
	"namespace":     "apps",
	"stepName":      "step",
	"stepSessionID": "step-0123456789",
}

// Result is what running one case gave.
type Result struct {
	Case *Case
	// Outcome is the evaluation's outcome.
	Outcome eval.Outcome
	// Phase, Reason and Message are the step's outcome as the engine
	// records it: the evaluation's, unless an output could not be read.
	Phase, Reason, Message string
	// Outputs are the step's outputs as the engine exports them, by name.
	Outputs map[string]any
	// Calls are the op calls made, "<op> <path>", in order.
	Calls []string
	// Problems say how the result differs from what the case wants, one
	// readable entry each; none means the case passed.
	Problems []string
}

// OK says whether the case passed.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

func (r *Result) problemf(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Request is the evaluation request of case c of def, with runner.
func Request(def eval.Definition, c *Case, runner op.Runner) eval.Request {
	ctxVars := make(map[string]any, len(c.Context)+len(defaultContext))
	for k, v := range c.Context {
		ctxVars[k] = v
	}
	for k, v := range defaultContext {
		if _, ok := ctxVars[k]; !ok {
			ctxVars[k] = v
		}
	}
	str := func(k string) string { s, _ := ctxVars[k].(string); return s }
	req := eval.Request{
		Definition: def,
		Context:    ctxVars,
		Step:       op.Step{RunName: str("name"), Namespace: str("namespace"), StepName: str("stepName"), StepID: str("stepSessionID")},
		Runner:     runner,
		Data:       true,
	}
	if len(c.Properties) > 0 {
		req.Parameters = c.Properties
	}
	for _, o := range c.Outputs {
		req.Outputs = append(req.Outputs, o.ValueFrom)
	}
	return req
}

// Run evaluates def for case c with ev and compares the result with what c
// wants.
func Run(ctx context.Context, ev *eval.Evaluator, def eval.Definition, c *Case) *Result {
	rec := NewRecorder(c.Ops, FailUnrecorded)
	req := Request(def, c, rec)
	out := ev.Evaluate(ctx, req)
	r := &Result{Case: c, Outcome: out, Phase: string(out.Phase), Reason: out.Reason, Message: out.Message}
	for _, call := range out.Calls {
		r.Calls = append(r.Calls, call.Op.String()+" "+call.Path)
	}
	r.readOutputs(req.Step.StepName)
	r.compare(rec)
	return r
}

// readOutputs exports the outputs of a succeeded step as the engine does:
// an output that cannot be read fails the step.
func (r *Result) readOutputs(step string) {
	if r.Outcome.Phase != eval.Succeeded || len(r.Case.Outputs) == 0 {
		return
	}
	if len(r.Outcome.Outputs) != len(r.Case.Outputs) {
		r.Phase, r.Reason = string(eval.Failed), ReasonOutput
		r.Message = fmt.Sprintf("step %q: the evaluator read %d of %d outputs", step, len(r.Outcome.Outputs), len(r.Case.Outputs))
		return
	}
	r.Outputs = map[string]any{}
	for i, o := range r.Case.Outputs {
		v := r.Outcome.Outputs[i]
		var data any
		err := v.Err
		if err == nil {
			data, err = plain(v.Value)
		}
		if err != nil {
			r.Phase, r.Reason = string(eval.Failed), ReasonOutput
			r.Message = fmt.Sprintf("step %q: output %q: %v", step, o.Name, err)
			r.Outputs = nil
			return
		}
		r.Outputs[o.Name] = data
	}
}

func (r *Result) compare(rec *Recorder) {
	w := r.Case.Want
	if r.Phase != w.Outcome {
		r.problemf("outcome: got %s, want %s", r.describe(), w.Outcome)
	}
	if w.Reason != "" && r.Reason != w.Reason {
		r.problemf("reason: got %q, want %q", r.Reason, w.Reason)
	}
	if w.Message != nil && r.Message != *w.Message {
		r.problemf("message:\n  got  %q\n  want %q", r.Message, *w.Message)
	}
	for _, s := range w.MessageContains {
		if !strings.Contains(r.Message, s) {
			r.problemf("message %q does not contain %q", r.Message, s)
		}
	}
	if w.Calls != nil && !(len(r.Calls) == 0 && len(w.Calls) == 0) {
		if d := cmp.Diff(w.Calls, r.Calls); d != "" {
			r.problemf("calls (-want +got):\n%s", indent(d))
		}
	}
	if missing := rec.Unrecorded(); len(missing) > 0 {
		r.problemf("calls without a recorded result in %s: %s", fileOps, strings.Join(missing, ", "))
	}
	for _, path := range sortedKeys(w.Params) {
		want, err := decode(w.Params[path])
		if err != nil {
			r.problemf("params of %s: %s: %v", path, fileWant, err)
			continue
		}
		got, ok := rec.Params(path)
		if !ok {
			r.problemf("params of %s: no call at %s (calls: %s)", path, path, strings.Join(r.Calls, ", "))
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			r.problemf("params of %s (-want +got):\n%s", path, indent(d))
		}
	}
	for _, expr := range sortedKeys(w.Value) {
		r.compareValue(expr, w.Value[expr])
	}
	for _, name := range sortedKeys(w.Outputs) {
		want, err := decode(w.Outputs[name])
		if err != nil {
			r.problemf("output %s: %s: %v", name, fileWant, err)
			continue
		}
		got, ok := r.Outputs[name]
		if !ok {
			if r.Phase == w.Outcome { // else said above
				r.problemf("output %s: none (the step %s)", name, r.describe())
			}
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			r.problemf("output %s (-want +got):\n%s", name, indent(d))
		}
	}
}

func (r *Result) compareValue(expr string, raw json.RawMessage) {
	want, err := decode(raw)
	if err != nil {
		r.problemf("value %s: %s: %v", expr, fileWant, err)
		return
	}
	if r.Outcome.Value == nil {
		r.problemf("value %s: no evaluated template (the step %s)", expr, r.describe())
		return
	}
	x, err := r.Outcome.Value.Eval(expr)
	if err == nil {
		x, err = plain(x)
	}
	if err != nil {
		r.problemf("value %s: %v", expr, err)
		return
	}
	if d := cmp.Diff(want, x); d != "" {
		r.problemf("value %s (-want +got):\n%s", expr, indent(d))
	}
}

// describe is the step's outcome in a few words: "failed (OpError: ...)".
func (r *Result) describe() string {
	s := r.Phase
	switch {
	case r.Reason != "" && r.Message != "":
		s += " (" + r.Reason + ": " + r.Message + ")"
	case r.Reason != "":
		s += " (" + r.Reason + ")"
	case r.Message != "":
		s += " (" + r.Message + ")"
	}
	return s
}

func decode(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}
