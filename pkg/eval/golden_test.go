package eval_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// A golden case is a txtar archive:
//
//	-- definition.cue --   the template (its name is the archive's base name)
//	-- properties.json --  optional step properties
//	-- context.json --     optional context
//	-- stubs.json --       optional {"<op path>": {"returns": ..., "error": "...", "permanent": bool}}
//	-- want.json --        {"outcome", "reason", "message", "messageContains": [...],
//	                        "calls": ["kube.apply apply", ...], "suspendFor": "30s",
//	                        "value": {"<cue expr>": <json>}}
//
// Ops of providers builtin and util run for real; others return their stub
// (or an empty result).
type want struct {
	Outcome         string                     `json:"outcome"`
	Reason          string                     `json:"reason"`
	Message         *string                    `json:"message"`
	MessageContains []string                   `json:"messageContains"`
	Calls           []string                   `json:"calls"`
	SuspendFor      string                     `json:"suspendFor"`
	Value           map[string]json.RawMessage `json:"value"`
	// Concurrent lists op paths that must have run at the same time.
	Concurrent []string `json:"concurrent"`
}

type stub struct {
	Returns   json.RawMessage `json:"returns"`
	Error     string          `json:"error"`
	Permanent bool            `json:"permanent"`
	// Delay makes the call take this long (for concurrency checks).
	Delay string `json:"delay"`
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	ev := newEvaluator(t, 0)
	for _, f := range files {
		f := f
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sec := map[string][]byte{}
			for _, fl := range ar.Files {
				sec[fl.Name] = fl.Data
			}
			var w want
			mustJSON(t, sec["want.json"], &w)
			stubs := map[string]stub{}
			if b := sec["stubs.json"]; b != nil {
				mustJSON(t, b, &stubs)
			}
			var ctxVars map[string]any
			if b := sec["context.json"]; b != nil {
				mustJSON(t, b, &ctxVars)
			}
			runner := &stubRunner{stubs: stubs}
			req := eval.Request{
				Definition: eval.Definition{Name: name, Template: string(sec["definition.cue"])},
				Context:    ctxVars,
				Step:       op.Step{RunName: "run", Namespace: "default", StepName: "step1", StepID: "step1-abc"},
				Runner:     runner,
			}
			if b := sec["properties.json"]; b != nil {
				req.Parameters = json.RawMessage(b)
			}
			out := ev.Evaluate(context.Background(), req)
			check(t, w, out, runner)
		})
	}
}

func check(t *testing.T, w want, out eval.Outcome, runner *stubRunner) {
	t.Helper()
	t.Logf("%s %s: %s", out.Phase, out.Reason, out.Message)
	if string(out.Phase) != w.Outcome {
		t.Errorf("outcome = %s (%s: %s), want %s", out.Phase, out.Reason, out.Message, w.Outcome)
	}
	if w.Reason != "" && out.Reason != w.Reason {
		t.Errorf("reason = %q, want %q (message %q)", out.Reason, w.Reason, out.Message)
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
	if w.Calls != nil && !reflect.DeepEqual(calls, w.Calls) && !(len(calls) == 0 && len(w.Calls) == 0) {
		t.Errorf("calls =\n  %q\nwant\n  %q", calls, w.Calls)
	}
	if w.SuspendFor != "" {
		d, _ := time.ParseDuration(w.SuspendFor)
		if out.SuspendFor != d {
			t.Errorf("suspendFor = %s, want %s", out.SuspendFor, d)
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
		if !reflect.DeepEqual(normalize(got), normalize(wantV)) {
			t.Errorf("value %s = %v, want %v", expr, got, wantV)
		}
	}
	if len(w.Concurrent) > 0 {
		runner.mu.Lock()
		defer runner.mu.Unlock()
		if runner.maxInFlight < len(w.Concurrent) {
			t.Errorf("ops %v ran with at most %d in flight, want them concurrent", w.Concurrent, runner.maxInFlight)
		}
	}
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

type stubRunner struct {
	stubs       map[string]stub
	mu          sync.Mutex
	inFlight    int
	maxInFlight int
}

func (r *stubRunner) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if call.Name.Provider == "builtin" || call.Name.Provider == "util" {
		return op.Direct.Run(ctx, call)
	}
	r.mu.Lock()
	r.inFlight++
	if r.inFlight > r.maxInFlight {
		r.maxInFlight = r.inFlight
	}
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.inFlight--; r.mu.Unlock() }()
	s, ok := r.stubs[call.Path]
	if !ok {
		return op.Result{}, nil
	}
	if s.Delay != "" {
		d, _ := time.ParseDuration(s.Delay)
		time.Sleep(d)
	}
	if s.Error != "" {
		err := errors.New(s.Error)
		if s.Permanent {
			err = op.Permanent(err)
		}
		return op.Result{}, &op.Error{Op: call.Name, Path: call.Path, Permanent: s.Permanent, Err: err}
	}
	var ret any
	if len(s.Returns) > 0 {
		if err := json.Unmarshal(s.Returns, &ret); err != nil {
			return op.Result{}, err
		}
	}
	return op.Result{Returns: ret}, nil
}

// testOps is a catalog whose kube, http and util ops have the real params
// shapes but are only ever run by a stub runner.
func testOps() *op.Registry {
	reg := op.NewRegistry()
	reg.Add(builtin.New())
	for _, do := range []string{"apply", "read", "list", "delete", "patch", "apply-in-parallel"} {
		reg.Register(op.Name{Provider: "kube", Do: do}, stubOp[kubeParams]{class: op.Idempotent})
	}
	reg.Register(op.Name{Provider: "http", Do: "do"}, httpStub{})
	reg.Add(transform.New())
	reg.Add(builtin.NewLog())
	return reg
}

type kubeParams struct {
	Cluster  string         `json:"cluster"`
	Value    map[string]any `json:"value"`
	Resource map[string]any `json:"resource"`
	Filter   map[string]any `json:"filter"`
	Patch    map[string]any `json:"patch"`
}

type stubOp[P any] struct{ class op.Class }

func (stubOp[P]) NewParams() any       { return new(P) }
func (s stubOp[P]) Class(any) op.Class { return s.class }
func (stubOp[P]) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, errors.New("stub op run directly")
}

type httpParams struct {
	Method  string         `json:"method"`
	URL     string         `json:"url"`
	Request map[string]any `json:"request"`
}

type httpStub struct{ stubOp[httpParams] }

func (httpStub) NewParams() any { return &httpParams{} }
func (httpStub) Class(p any) op.Class {
	if hp, ok := p.(*httpParams); ok && (hp.Method == "GET" || hp.Method == "") {
		return op.Idempotent
	}
	return op.Effect
}

func newEvaluator(t testing.TB, timeout time.Duration) *eval.Evaluator {
	t.Helper()
	ev, err := eval.New(eval.Options{Ops: testOps(), EvalTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
