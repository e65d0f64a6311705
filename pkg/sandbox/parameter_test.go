package sandbox_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
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
