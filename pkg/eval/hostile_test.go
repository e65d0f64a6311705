package eval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Expressions CUE's parser gives up on must come back as errors naming the
// expression, for if and valueFrom alike; they used to reach BuildExpr as
// nil and crash the process.
func TestMalformedExpressions(t *testing.T) {
	ev := newEvaluator(t, 0)
	out := ev.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "d", Template: "x: 1\nstatus: x: 2\n"}})
	if out.Phase != eval.Succeeded {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
	scope := map[string]any{"x": 1, "y": 2, "status": map[string]any{"x": 1}}
	for _, expr := range []string{
		"x ==== y",
		"status.x ==== (",
		"x === y",
		"(",
		")",
		"x +",
		"status.",
		"[1, 2",
		"{a: 1",
		"x == y == ",
		"",
		"\x00",
		"x; y",
		"==",
		"== x",
		"x...",
	} {
		t.Run(fmt.Sprintf("%q", expr), func(t *testing.T) {
			if _, err := ev.Condition(expr, scope); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("if %q", expr)) {
				t.Errorf("Condition: err = %v, want an error naming the expression", err)
			}
			if _, err := out.Value.Eval(expr); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", expr)) {
				t.Errorf("Eval: err = %v, want an error naming the expression", err)
			}
		})
	}
}

// panicky's parameters panic when CUE decodes them: a panic inside a CUE
// call (Value.Decode) on the evaluator's goroutine.
type panickyParams struct{}

func (*panickyParams) UnmarshalJSON([]byte) error { panic("decoding exploded") }

type panickyOp struct{}

func (panickyOp) NewParams() any     { return new(panickyParams) }
func (panickyOp) Class(any) op.Class { return op.Idempotent }
func (panickyOp) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, nil
}

// panicRunner panics running the ops at the paths it names.
type panicRunner map[string]bool

func (r panicRunner) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if r[call.Path] {
		panic("op exploded at " + call.Path)
	}
	return echoRunner{}.Run(ctx, call)
}

// A panic inside a CUE call or an op, on any goroutine the evaluator
// starts, fails the step with a message naming the step and definition.
func TestPanicsFailTheStep(t *testing.T) {
	ops := testOps()
	ops.Register(op.Name{Provider: "test", Do: "panicky"}, panickyOp{})
	ev, err := eval.New(eval.Options{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		template string
		runner   op.Runner
		want     []string
	}{{
		name:     "decode",
		template: "boom: {#provider: \"test\", #do: \"panicky\", a: 1}\n",
		want:     []string{"CUE failed", "decoding exploded"},
	}, {
		name: "batch",
		template: `import "vela/http"

a: http.#HTTPPost & {$params: url: "http://example.invalid/a"}
b: http.#HTTPPost & {$params: url: "http://example.invalid/b"}
`,
		runner: panicRunner{"b": true},
		want:   []string{"op http.do at b", "op exploded at b"},
	}, {
		name: "control",
		template: `import "vela/op"

s: op.#Suspend
`,
		runner: panicRunner{"s": true},
		want:   []string{"op exploded at s"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "def-" + tt.name, Template: tt.template},
				Step:       op.Step{StepName: "step-" + tt.name},
				Runner:     tt.runner,
			})
			want := append([]string{fmt.Sprintf("step %q (definition %q)", "step-"+tt.name, "def-"+tt.name)}, tt.want...)
			if out.Phase != eval.Failed {
				t.Errorf("phase %s, want failed", out.Phase)
			}
			for _, w := range want {
				if !strings.Contains(out.Message, w) {
					t.Errorf("message %q does not contain %q", out.Message, w)
				}
			}
		})
	}
	// The evaluator goes on working.
	out := ev.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "ok", Template: "x: 1\n"}})
	if out.Phase != eval.Succeeded {
		t.Errorf("after the panics: %s %s", out.Phase, out.Message)
	}
}

type panickyJSON struct{}

func (panickyJSON) MarshalJSON() ([]byte, error) { panic("encoding exploded") }

// A panic while CUE encodes a condition's scope is an error naming the if.
func TestConditionPanicIsAnError(t *testing.T) {
	ev := newEvaluator(t, 0)
	_, err := ev.Condition("x == 1", map[string]any{"x": panickyJSON{}})
	if err == nil || !strings.Contains(err.Error(), `if "x == 1"`) || !strings.Contains(err.Error(), "encoding exploded") {
		t.Errorf("err = %v, want one naming the expression and the panic", err)
	}
	if ok, err := ev.Condition("x == 1", map[string]any{"x": 1}); !ok || err != nil {
		t.Errorf("after the panic: %v, %v", ok, err)
	}
}

// sharedReturns answers every HTTP call with one shared map of whole
// float64s, as a journal replaying a decoded record would.
type sharedReturns struct{ returns map[string]any }

func (r sharedReturns) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if call.Name.Provider == "http" {
		return op.Result{Returns: r.returns}, nil
	}
	return echoRunner{}.Run(ctx, call)
}

func nestedNumbers() map[string]any {
	return map[string]any{
		"replicas": 3.0,
		"spec":     map[string]any{"ports": []any{80.0, 443.0, map[string]any{"port": 8080.0}}, "ratio": 0.5},
		"labels":   map[string]any{"app": "web"},
	}
}

// Concurrent steps share their inputs (a run's spec.context, the journal's
// records): the evaluator reads them and never writes them. Run with -race.
func TestInputsAreNeitherMutatedNorRaced(t *testing.T) {
	ev := newEvaluator(t, 0)
	params := map[string]any{"url": "http://127.0.0.1/x", "method": "POST", "body": nestedNumbers()}
	ctxVars := map[string]any{"name": "run", "namespace": "default", "config": nestedNumbers()}
	returns := map[string]any{"statusCode": 200.0, "body": `{"ok":true}`, "extra": map[string]any{"n": []any{1.0}}}
	runner := sharedReturns{returns: returns}
	def := eval.Definition{Name: "request", Template: request + "\nreplicas: context.config.replicas & int\nports: context.config.spec.ports\n"}
	want := []any{params, ctxVars, returns}
	before := deepCopy(t, want)

	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: def, Parameters: params, Context: ctxVars, Runner: runner,
				Step: op.Step{StepName: fmt.Sprintf("s%d", i)},
			})
			if out.Phase != eval.Succeeded {
				t.Errorf("step %d: %s %s", i, out.Phase, out.Message)
			}
		}()
	}
	wg.Wait()
	if !reflect.DeepEqual(before, want) {
		t.Errorf("the evaluator changed its inputs:\nbefore %#v\nafter  %#v", before, want)
	}
}

func deepCopy(t *testing.T, v []any) []any {
	t.Helper()
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = copyData(x)
	}
	return out
}

func copyData(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyData(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = copyData(e)
		}
		return l
	}
	return v
}

func nestedStruct(n int) string {
	return strings.Repeat("{a: ", n) + "1" + strings.Repeat("}", n)
}

func nestedList(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }

func nestedMap(n int) map[string]any {
	m := map[string]any{"leaf": 1.0}
	for i := 1; i < n; i++ {
		m = map[string]any{"a": m}
	}
	return m
}

// Nesting is bounded in templates, parameters, properties JSON and
// context; Check rejects a template that nests too deep, so the definition
// is not Ready. A deep template is refused before CUE parses it: the parse
// alone of 200,000 levels is over the time bound.
func TestNestingIsBounded(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: testOps(), MaxNesting: 100, EvalTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		template string
		params   any
		context  map[string]any
		check    bool // Check rejects it too
		reason   string
		want     []string
	}{
		{name: "struct at the bound", template: "x: " + nestedStruct(100) + "\n"},
		{name: "list at the bound", template: "x: " + nestedList(100) + "\n"},
		{name: "20000-deep struct", template: "x: " + nestedStruct(20000) + "\n", check: true,
			reason: eval.ReasonTemplate, want: []string{"deeper than 100 levels", "20000-deep-struct.cue:1:404"}},
		{name: "200000-deep struct", template: "x: " + nestedStruct(200000) + "\n", check: true,
			reason: eval.ReasonTemplate, want: []string{"deeper than 100 levels", "200000-deep-struct.cue:1:404"}},
		{name: "label chain at the bound", template: "x: " + strings.Repeat("a: ", 100) + "1\n"},
		{name: "label chain", template: "x: " + strings.Repeat("a: ", 101) + "1\n", check: true,
			reason: eval.ReasonTemplate, want: []string{"deeper than 100 levels", "label-chain.cue:1:"}},
		{name: "list", template: "x: 1\ny: " + nestedList(101) + "\n", check: true,
			reason: eval.ReasonTemplate, want: []string{"deeper than 100 levels", "list.cue:2:104"}},
		{name: "params at the bound", template: "x: parameter\n", params: nestedMap(100)},
		{name: "params", template: "x: parameter\n", params: nestedMap(101),
			reason: eval.ReasonParameter, want: []string{"parameter" + strings.Repeat(".a", 100) + ": maps and lists nest deeper than 100"}},
		{name: "properties json", template: "x: parameter\n", params: json.RawMessage(`{"a": ` + nestedList(100) + `}`),
			reason: eval.ReasonParameter, want: []string{"properties", "deeper than 100 levels", "properties:1:"}},
		{name: "context", template: "x: context\n", context: map[string]any{"deep": []any{nestedMap(100)}},
			reason: eval.ReasonParameter, want: []string{"context.deep[0]" + strings.Repeat(".a", 98)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			def := eval.Definition{Name: name, Template: tt.template}
			cerr := ev.Check(def)
			if tt.check != (cerr != nil) {
				t.Errorf("Check = %v, want an error: %v", cerr, tt.check)
			}
			out := ev.Evaluate(context.Background(), eval.Request{Definition: def, Parameters: tt.params, Context: tt.context})
			if tt.reason == "" {
				if out.Phase != eval.Succeeded {
					t.Errorf("outcome %s %s", out.Phase, out.Message)
				}
				return
			}
			if out.Phase != eval.Failed || out.Reason != tt.reason {
				t.Errorf("outcome %s %s %q, want failed %s", out.Phase, out.Reason, out.Message, tt.reason)
			}
			for _, w := range append([]string{fmt.Sprintf("definition %q", name)}, tt.want...) {
				if !strings.Contains(out.Message, w) {
					t.Errorf("message %q does not contain %q", out.Message, w)
				}
				if tt.check && !strings.Contains(cerr.Error(), w) {
					t.Errorf("Check error %q does not contain %q", cerr, w)
				}
			}
		})
	}
}
