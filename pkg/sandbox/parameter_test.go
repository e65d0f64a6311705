package sandbox_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// The parameter's schema and the check of properties come out of a worker
// as they do in-process: the same schema, the problems typed.
func TestPoolParameters(t *testing.T) {
	p := newPool(t, sandbox0())
	def := eval.Definition{Name: "request", Template: request}
	s, err := p.ParameterSchema(def)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := eval.New(eval.Options{Ops: testOps()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ev.ParameterSchema(def)
	if err != nil {
		t.Fatal(err)
	}
	in.Order = nil // template order stays in the worker; JSON has none
	for _, f := range in.Properties {
		f.Order = nil
	}
	if d := cmp.Diff(in, s); d != "" {
		t.Errorf("schema from the pool (-in-process +pool):\n%s", d)
	}
	if _, err := p.ParameterSchema(eval.Definition{Name: "broken", Template: "parameter: {"}); err == nil {
		t.Error("a template that does not compile has a schema")
	}

	err = p.ValidateParameters([]eval.ParameterCheck{
		{Step: "a", Definition: def, Parameters: map[string]any{"url": 1}},
		{Step: "b", Definition: def, Parameters: map[string]any{"method": "GET"}},
		{Step: "c", Definition: def, Parameters: map[string]any{"url": "http://x"}},
	})
	var perr *eval.ParameterError
	if !errors.As(err, &perr) {
		t.Fatalf("err = %v, want an *eval.ParameterError", err)
	}
	want := []eval.ParameterProblem{
		{Step: "a", Definition: "request", Path: "url", Message: "got 1, want string"},
		{Step: "b", Definition: "request", Path: "url", Message: "required field missing: want string"},
	}
	if d := cmp.Diff(want, perr.Problems); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if err := p.ValidateParameters([]eval.ParameterCheck{{Step: "c", Definition: def, Parameters: map[string]any{"url": "http://x"}}}); err != nil {
		t.Errorf("good properties: %v", err)
	}
}

// The first tick's check of a run's properties through the pool: what a
// run pays once, beside its steps' evaluations. The run has three steps of
// the request definition; compare cpu-ms/op with
// BenchmarkPoolEvaluateRequest, one step's evaluation.
func BenchmarkPoolValidateParameters(b *testing.B) {
	p := newPool(b, sandbox0())
	def := eval.Definition{Name: "request", Template: request}
	checks := make([]eval.ParameterCheck, 3)
	for i := range checks {
		checks[i] = eval.ParameterCheck{Step: fmt.Sprintf("s%d", i), Definition: def,
			Parameters: map[string]any{"url": "http://127.0.0.1/x", "method": "POST", "body": map[string]any{"a": 1}},
			Context:    map[string]any{"name": "run", "namespace": "default", "stepName": fmt.Sprintf("s%d", i), "stepSessionID": "s-1"}}
	}
	if err := p.ValidateParameters(checks); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU(b, p)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.ValidateParameters(checks); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// The same check in-process, for the pool's overhead.
func BenchmarkInProcessValidateParameters(b *testing.B) {
	ev, err := eval.New(eval.Options{Ops: testOps()})
	if err != nil {
		b.Fatal(err)
	}
	def := eval.Definition{Name: "request", Template: request}
	checks := make([]eval.ParameterCheck, 3)
	for i := range checks {
		checks[i] = eval.ParameterCheck{Step: fmt.Sprintf("s%d", i), Definition: def,
			Parameters: map[string]any{"url": "http://127.0.0.1/x", "method": "POST", "body": map[string]any{"a": 1}},
			Context:    map[string]any{"name": "run", "namespace": "default", "stepName": fmt.Sprintf("s%d", i), "stepSessionID": "s-1"}}
	}
	if err := ev.ValidateParameters(checks); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU(b, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ev.ValidateParameters(checks); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// A runaway template costs the properties check one worker at most, once:
// the pool remembers it, so neither Check nor a later check compiles it
// again; the good template checked beside it still has its problems
// found.
func TestPoolParametersOfARunawayTemplate(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1, EvalTimeout: time.Second})
	runaway := eval.Definition{Name: "runaway", Template: "import \"list\"\nx: [for i in list.Range(0, 1e12, 1) if i < 0 {i}]\nparameter: {}\n"}
	good := eval.Definition{Name: "request", Template: request}
	checks := []eval.ParameterCheck{
		{Step: "a", Definition: good, Parameters: map[string]any{"url": 1}},
		{Step: "b", Definition: runaway},
	}
	lost := func() int64 { st := p.Stats(); return st.Killed + st.Died }

	// Two templates in one session: the overrun is found to be runaway's by
	// checking each alone (one more worker), and a's problem is reported.
	err := p.ValidateParameters(checks)
	var perr *eval.ParameterError
	if !errors.As(err, &perr) || len(perr.Problems) != 1 || perr.Problems[0].Step != "a" {
		t.Fatalf("err = %v, want a's problem only", err)
	}
	if n := lost(); n != 2 {
		t.Errorf("%d workers lost, want 2 (the session, then runaway alone)", n)
	}
	// Known now: nothing compiles it again.
	if err := p.ValidateParameters(checks); !errors.As(err, &perr) {
		t.Errorf("again: err = %v", err)
	}
	var over *eval.OverrunError
	if err := p.Check(runaway); !errors.As(err, &over) || over.Reason != eval.ReasonTimeout {
		t.Errorf("Check of the runaway template: %v, want its overrun", err)
	}
	if _, err := p.ParameterSchema(runaway); !errors.As(err, &over) {
		t.Errorf("ParameterSchema of the runaway template: %v, want its overrun", err)
	}
	if n := lost(); n != 2 {
		t.Errorf("%d workers lost after the template was known to overrun, want still 2", n)
	}
	if err := p.Check(good); err != nil {
		t.Errorf("the good template: %v", err)
	}
}
