package eval_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// An outcome that failed carries its evaluated value as data (what the
// controller keeps for `stepflow debug`) without Request.Data asking for
// it, as far as evaluation went; one that succeeded carries none.
func TestOutcomeDataOnFailure(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: testOps()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, template string
		phase          eval.Phase
		data           any
	}{{
		name:     "conflict with the context: the other fields",
		template: "kept: parameter.who\nport: int & context.name\nparameter: who: string\n",
		phase:    eval.Failed,
		data:     map[string]any{"kept": "world", "parameter": map[string]any{"who": "world"}, "context": map[string]any{"name": "x"}},
	}, {
		name:     "#Fail",
		template: "import \"vela/op\"\n\nkept: parameter.who\nfail: op.#Fail & {message: \"no\"}\nparameter: who: string\n",
		phase:    eval.Failed,
		data: map[string]any{"kept": "world", "parameter": map[string]any{"who": "world"}, "context": map[string]any{"name": "x"},
			"fail": map[string]any{"message": "no"}},
	}, {
		name:     "does not compile: no value",
		template: "kept: kpt\n",
		phase:    eval.Failed,
	}, {
		name:     "succeeded: not asked for",
		template: "kept: parameter.who\nparameter: who: string\n",
		phase:    eval.Succeeded,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := ev.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "d", Template: tc.template},
				Parameters: map[string]any{"who": "world"}, Context: map[string]any{"name": "x"}})
			if out.Phase != tc.phase {
				t.Fatalf("phase %s (%s), want %s", out.Phase, out.Message, tc.phase)
			}
			if diff := cmp.Diff(tc.data, out.Data); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}
