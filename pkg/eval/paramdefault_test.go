package eval_test

import (
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// A parameter whose default refers to the run context, as KubeVela's
// config and object definitions write namespace: *context.namespace |
// string, is not a missing property when the properties leave it out:
// the check does not fill context, and Value.Default does not see such a
// default. A field without a default is still missing.
func TestValidateParametersContextDefault(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	def := eval.Definition{Name: "read-config", Template: `
parameter: {
	name:      string
	namespace: *context.namespace | string
	owner:     string | *context.name
}
`}
	if err := ev.ValidateParameters([]eval.ParameterCheck{{Step: "s", Definition: def, Parameters: map[string]any{"name": "db"}}}); err != nil {
		t.Errorf("namespace and owner left to their context defaults: %v", err)
	}
	if err := ev.ValidateParameters([]eval.ParameterCheck{{Step: "s", Definition: def, Parameters: map[string]any{}}}); err == nil {
		t.Error("name is missing and has no default: want a problem")
	}
}
