package eval_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// Templates written for CUE before v0.11 compile and evaluate as they did
// then; each rewrite is a warning naming its position.
func TestOldCUEIsUpgraded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template string
		params   map[string]any
		want     any      // the field out, evaluated
		warnings []string // each the suffix of one warning, in order
	}{{
		name:     "list literal + list literal",
		template: "out: [1, 2] + [3]\n",
		want:     []any{int64(1), int64(2), int64(3)},
		warnings: []string{"step.cue:1:13: list addition (+) rewritten to list.Concat: CUE since v0.11 has no arithmetic on lists"},
	}, {
		name: "parameter list field + literal",
		template: `parameter: {
	args?: [...string]
}
out: parameter.args + ["--verbose"]
`,
		params:   map[string]any{"args": []any{"-n", "1"}},
		want:     []any{"-n", "1", "--verbose"},
		warnings: []string{"step.cue:4:21: list addition"},
	}, {
		name: "defaulted parameter, comprehension, let and chain",
		template: `parameter: {
	env: *[] | [...{name: string, value: string}]
}
let base = [{name: "A", value: "1"}]
out: base + [for e in parameter.env {e}] + parameter.env
`,
		params: map[string]any{"env": []any{map[string]any{"name": "B", "value": "2"}}},
		want: []any{
			map[string]any{"name": "A", "value": "1"},
			map[string]any{"name": "B", "value": "2"},
			map[string]any{"name": "B", "value": "2"},
		},
		// a + b + c is one list.Concat, one warning at the first +.
		warnings: []string{"step.cue:5:11: list addition"},
	}, {
		name: "nested in a struct and a list, with list already imported",
		template: `import "list"

spec: containers: [{
	args: ["run"] + (["--port", "80"])
	n: list.Sum([1, 2])
}]
out: spec.containers[0].args
`,
		want:     []any{"run", "--port", "80"},
		warnings: []string{"step.cue:4:16: list addition"},
	}, {
		name: "a field named list does not hide the import",
		template: `list: ["x"]
out: list + ["y"]
`,
		want:     []any{"x", "y"},
		warnings: []string{"step.cue:2:11: list addition"},
	}, {
		name:     "numbers are added",
		template: "a: 1\nout: a + 2\n",
		want:     int64(3),
	}, {
		name: "strings are joined",
		template: `parameter: {
	name: string
}
out: parameter.name + "-job"
`,
		params: map[string]any{"name": "build"},
		want:   "build-job",
	}, {
		name: "a reference whose kind only evaluation knows is left alone",
		template: `parameter: {
	n: _
}
out: parameter.n + 1
`,
		params: map[string]any{"n": 41},
		want:   int64(42),
	}, {
		name: "an unused import is dropped",
		template: `import (
	"strings"
	"vela/op"
	js "encoding/json"
)

out: strings.ToUpper("a")
`,
		want: "A",
		warnings: []string{
			`step.cue:3:2: unused import "vela/op" removed`,
			`step.cue:4:2: unused import "encoding/json" removed`,
		},
	}, {
		name: "both at once",
		template: `import "vela/op"

out: ["a"] + ["b"]
`,
		want: []any{"a", "b"},
		warnings: []string{
			`step.cue:1:8: unused import "vela/op" removed`,
			`step.cue:3:12: list addition`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			def := eval.Definition{Name: "step", Template: tc.template}
			ev := newEvaluator(t, 0)
			if err := ev.Check(def); err != nil {
				t.Fatalf("Check: %v", err)
			}
			out := ev.Evaluate(context.Background(), eval.Request{Definition: def, Parameters: tc.params, Data: true})
			if out.Phase != eval.Succeeded {
				t.Fatalf("outcome %s %s: %s", out.Phase, out.Reason, out.Message)
			}
			data, _ := out.Data.(map[string]any)
			if diff := cmp.Diff(tc.want, data["out"]); diff != "" {
				t.Errorf("out (-want +got):\n%s", diff)
			}
			warnings, err := eval.Rewrites(def)
			if err != nil {
				t.Fatalf("Rewrites: %v", err)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d like %q", warnings, len(tc.warnings), tc.warnings)
			}
			for i, w := range tc.warnings {
				if !strings.HasPrefix(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to start %q", i, warnings[i], w)
				}
			}
		})
	}
}

// An error in an upgraded template still points at the line of the source.
func TestUpgradedTemplateErrorsKeepTheirPositions(t *testing.T) {
	ev := newEvaluator(t, 0)
	err := ev.Check(eval.Definition{Name: "bad", Template: `import "strings"

out: [1] + [2]
bad: 1 & 2
`})
	if err == nil || !strings.Contains(err.Error(), "bad.cue:4:") {
		t.Fatalf("Check = %v, want the conflict at bad.cue:4", err)
	}
}
