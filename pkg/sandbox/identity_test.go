package sandbox_test

import (
	"context"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// An op call a worker finds is run in the controller with the step of the
// request, identity included: the worker, which evaluates a tenant's
// template, cannot change whose rights the call acts with.
func TestOpCallsKeepTheStepIdentity(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	step := op.Step{RunUID: "uid", RunName: "run", Namespace: "tenant-a", StepName: "read", StepID: "read-1", ServiceAccount: "deployer"}
	var got []op.Step
	runner := op.RunnerFunc(func(_ context.Context, c *op.Call) (op.Result, error) {
		got = append(got, c.Step)
		return op.Result{Returns: map[string]any{"value": map[string]any{"data": map[string]any{"k": "v"}}}}, nil
	})
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "read", Template: `import "vela/kube"

read: kube.#Read & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}}
`},
		Step: step, Runner: runner,
	})
	if out.Phase != eval.Succeeded {
		t.Fatalf("outcome %s %s: %s", out.Phase, out.Reason, out.Message)
	}
	if len(got) != 1 || got[0] != step {
		t.Errorf("op calls ran as %+v, want %+v", got, step)
	}
}
