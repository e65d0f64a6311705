// Golden tests of the shipped step definitions: each template evaluated
// with recorded op results, no cluster needed.
package definitions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
)

// A case is testdata/DEFINITION/CASE.txtar:
//
//	-- properties.json --  the step's properties
//	-- context.json --     the run context (name, namespace and
//	                       stepSessionID are added when missing)
//	-- ops.json --         recorded results by op call path:
//	                       {"<path>": {"returns": ..., "error": "...", "permanent": bool}}
//	-- want.json --        {"outcome", "reason", "message", "messageContains",
//	                        "calls": ["<op> <path>", ...] (every call made, in order),
//	                        "params": {"<path>": <the call's decoded params, as JSON>},
//	                        "value": {"<cue expr>": <json>}}
//
// Pure and control ops (wait, suspend, fail, terminate, health, ...) run
// for real. Any other call
// must have a recorded result: a call without one fails the test, so a
// template that starts calling something new is noticed.
type want struct {
	Outcome         string                     `json:"outcome"`
	Reason          string                     `json:"reason"`
	Message         *string                    `json:"message"`
	MessageContains []string                   `json:"messageContains"`
	Calls           []string                   `json:"calls"`
	Params          map[string]json.RawMessage `json:"params"`
	Value           map[string]json.RawMessage `json:"value"`
}

type recorded struct {
	Returns   json.RawMessage `json:"returns"`
	Error     string          `json:"error"`
	Permanent bool            `json:"permanent"`
}

func TestShippedDefinitions(t *testing.T) {
	cases, err := filepath.Glob("testdata/*/*.txtar")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	ev, err := eval.New(eval.Options{Ops: opset.Catalog()})
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]eval.Definition{}
	for _, c := range cases {
		name := filepath.Base(filepath.Dir(c))
		if _, ok := defs[name]; !ok {
			src, err := definition.FromFile(name + ".cue")
			if err != nil {
				t.Fatalf("%s.cue: %v", name, err)
			}
			if src.Name != name {
				t.Fatalf("%s.cue names itself %q", name, src.Name)
			}
			defs[name] = src.Definition
		}
		t.Run(name+"/"+strings.TrimSuffix(filepath.Base(c), ".txtar"), func(t *testing.T) {
			runCase(t, ev, defs[name], c)
		})
	}
}

func runCase(t *testing.T, ev *eval.Evaluator, def eval.Definition, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string][]byte{}
	for _, f := range ar.Files {
		sec[f.Name] = f.Data
	}
	var w want
	mustJSON(t, sec["want.json"], &w)
	runner := &recordedRunner{ops: map[string]recorded{}, params: map[string]any{}}
	if b := sec["ops.json"]; b != nil {
		mustJSON(t, b, &runner.ops)
	}
	ctxVars := map[string]any{}
	if b := sec["context.json"]; b != nil {
		mustJSON(t, b, &ctxVars)
	}
	for k, v := range map[string]any{"name": "app-v3", "namespace": "apps", "stepName": "step", "stepSessionID": "step-0123456789"} {
		if _, ok := ctxVars[k]; !ok {
			ctxVars[k] = v
		}
	}
	req := eval.Request{
		Definition: def,
		Context:    ctxVars,
		Step:       op.Step{RunName: "app-v3", Namespace: "apps", StepName: "step", StepID: "step-0123456789"},
		Runner:     runner,
		Data:       true,
	}
	if b := sec["properties.json"]; b != nil {
		req.Parameters = json.RawMessage(b)
	}
	out := ev.Evaluate(context.Background(), req)
	t.Logf("%s %s: %s", out.Phase, out.Reason, out.Message)
	if testing.Verbose() {
		data, _ := json.MarshalIndent(out.Data, "", "  ")
		t.Logf("evaluated:\n%s", data)
	}
	if string(out.Phase) != w.Outcome {
		t.Errorf("outcome = %s (%s: %s), want %s", out.Phase, out.Reason, out.Message, w.Outcome)
	}
	if w.Reason != "" && out.Reason != w.Reason {
		t.Errorf("reason = %q, want %q", out.Reason, w.Reason)
	}
	if w.Message != nil && out.Message != *w.Message {
		t.Errorf("message = %q, want %q", out.Message, *w.Message)
	}
	for _, s := range w.MessageContains {
		if !strings.Contains(out.Message, s) {
			t.Errorf("message %q does not contain %q", out.Message, s)
		}
	}
	var calls []string
	for _, c := range out.Calls {
		calls = append(calls, c.Op.String()+" "+c.Path)
	}
	if w.Calls != nil && !(len(calls) == 0 && len(w.Calls) == 0) && !reflect.DeepEqual(calls, w.Calls) {
		t.Errorf("calls =\n  %q\nwant\n  %q", calls, w.Calls)
	}
	if missing := runner.unrecorded(); len(missing) > 0 {
		t.Errorf("calls without a recorded result: %v", missing)
	}
	for path, raw := range w.Params {
		var wantV any
		mustJSON(t, raw, &wantV)
		got, ok := runner.paramsOf(path)
		if !ok {
			t.Errorf("no call at %s", path)
			continue
		}
		if !reflect.DeepEqual(got, wantV) {
			g, _ := json.Marshal(got)
			t.Errorf("params of %s =\n  %s\nwant\n  %s", path, g, raw)
		}
	}
	for expr, raw := range w.Value {
		if out.Value == nil {
			t.Errorf("no value to check %s against", expr)
			continue
		}
		got, err := out.Value.Eval(expr)
		if err != nil {
			t.Errorf("value %s: %v", expr, err)
			continue
		}
		var wantV any
		mustJSON(t, raw, &wantV)
		if !reflect.DeepEqual(normalize(got), wantV) {
			t.Errorf("value %s = %v, want %v", expr, got, wantV)
		}
	}
}

// recordedRunner answers op calls from their recorded results and runs
// pure ops for real.
type recordedRunner struct {
	ops     map[string]recorded
	mu      sync.Mutex
	params  map[string]any
	missing []string
}

func (r *recordedRunner) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if _, pure := call.Op.(op.Pure); pure || call.Class == op.Control {
		return op.Direct.Run(ctx, call)
	}
	r.mu.Lock()
	r.params[call.Path] = normalize(call.Params)
	r.mu.Unlock()
	rec, ok := r.ops[call.Path]
	if !ok {
		r.mu.Lock()
		r.missing = append(r.missing, call.Name.String()+" "+call.Path)
		r.mu.Unlock()
		return op.Result{}, op.Permanentf("no recorded result for %s at %s", call.Name, call.Path)
	}
	if rec.Error != "" {
		err := errors.New(rec.Error)
		if rec.Permanent {
			err = op.Permanent(err)
		}
		return op.Result{}, &op.Error{Op: call.Name, Path: call.Path, Permanent: rec.Permanent, Err: err}
	}
	var ret any
	if len(rec.Returns) > 0 {
		if err := json.Unmarshal(rec.Returns, &ret); err != nil {
			return op.Result{}, fmt.Errorf("recorded result of %s: %w", call.Path, err)
		}
	}
	return op.Result{Returns: ret}, nil
}

func (r *recordedRunner) unrecorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.missing...)
	sort.Strings(out)
	return out
}

func (r *recordedRunner) paramsOf(path string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.params[path]
	return p, ok
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
}
