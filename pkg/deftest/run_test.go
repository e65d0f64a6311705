package deftest

import (
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// A case's outputs fail the step as the engine's do.
func TestReasonOutputIsTheEngines(t *testing.T) {
	if ReasonOutput != engine.ReasonOutput {
		t.Errorf("deftest.ReasonOutput = %q, the engine's is %q", ReasonOutput, engine.ReasonOutput)
	}
}
