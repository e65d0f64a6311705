package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Every op call of a tick carries the identity the caller resolved, with
// the run's namespace: it is what the kube ops and Secret reads act as.
func TestOpCallsCarryTheIdentity(t *testing.T) {
	run := &v1alpha1.WorkflowRun{}
	run.Name, run.Namespace, run.UID = "who", "tenant-a", "uid"
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "one", Type: "post"}},
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "two", Type: "post"}},
	}}
	var (
		mu   sync.Mutex
		seen []op.Step
	)
	ops := op.RunnerFunc(func(_ context.Context, c *op.Call) (op.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, c.Step)
		return op.Result{Returns: map[string]any{"response": map[string]any{"statusCode": 200}}}, nil
	})
	ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: run, Steps: run.Spec.WorkflowSpec.Steps, ServiceAccount: "deployer",
		Evaluator: ev, Ops: ops,
		Journal:     journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{}),
		Definitions: engine.DefinitionMap{"post": {Name: "post", Template: "import \"vela/op\"\nreq: op.#HTTPPost & {url: \"http://x/y\"}\n"}},
		Now:         func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("%d op calls, want 2 (phase %s: %s)", len(seen), res.Status.Phase, res.Status.Message)
	}
	for _, s := range seen {
		if s.ServiceAccount != "deployer" || s.Namespace != "tenant-a" {
			t.Errorf("step %s acts as %q in %q, want deployer in tenant-a", s.StepName, s.ServiceAccount, s.Namespace)
		}
	}
}
