package component

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	types := Fixed{"config": {Name: "config", Template: `
parameter: v: string
output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: context.name, data: v: parameter.v}
`}}
	family := func(types TypesFunc) op.Family {
		late := &Deferred{}
		f := New(Options{Types: types, Evaluator: late})
		ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(f)})
		if err != nil {
			t.Fatal(err)
		}
		late.Set(ev)
		return f
	}
	// Component types read from an API server that holds every request
	// until it is given up.
	url, arrived := optest.BlockingServer(t)
	slowTypes := func() op.Family {
		scheme, err := api.NewScheme()
		if err != nil {
			t.Fatal(err)
		}
		mapper := meta.NewDefaultRESTMapper(nil)
		mapper.Add(v1beta1.GroupVersion.WithKind(string(definition.ComponentKind)), meta.RESTScopeNamespace)
		c, err := client.New(&rest.Config{Host: url}, client.Options{Scheme: scheme, Mapper: mapper})
		if err != nil {
			t.Fatal(err)
		}
		return family(func(ctx context.Context, ns string) Definitions {
			return definition.Cluster{Reader: c}.ForKind(ctx, ns, definition.ComponentKind)
		})
	}
	params := func(typ string, props map[string]any) func() any {
		return func() any { return &renderParams{Type: typ, Name: "c", Properties: props} }
	}
	optest.Run(t, optest.Suite{
		New: func() op.Family { return family(types.Types()) },
		Blocking: []optest.Blocking{{Name: "types from a slow API server", Do: "render", New: slowTypes, InFlight: arrived,
			Params: params("config", map[string]any{"v": "x"})}},
		Cases: []optest.Case{
			{Name: "render", Do: "render", Params: params("config", map[string]any{"v": "x"})},
			{Name: "unknown type", Do: "render", Params: params("nope", nil), Invalid: true},
			{Name: "failing template", Do: "render", Params: params("config", map[string]any{"v": 1}), Invalid: true},
			{Name: "no type", Do: "render", Params: params("", nil), Invalid: true},
		},
	})
}

// A render whose nested evaluation is cancelled is retryable and keeps
// the cancellation as its cause.
func TestRenderCancelledKeepsCause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := New(Options{Types: Fixed{"x": {Name: "x", Template: "output: {}\n"}}.Types(),
		Evaluator: evaluatorFunc(func(ctx context.Context, req eval.Request) eval.Outcome {
			cancel() // the step is given up while the component renders
			return eval.Outcome{Phase: eval.Broken, Reason: eval.ReasonOp, Message: "evaluation cancelled"}
		})})
	render := f.Ops()["render"]
	_, err := render.Run(ctx, &op.Call{Op: render, Params: &renderParams{Type: "x", Name: "c"}})
	if !errors.Is(err, context.Canceled) || op.IsPermanent(err) {
		t.Errorf("error %v: want a retryable one wrapping context.Canceled", err)
	}
}

type evaluatorFunc func(ctx context.Context, req eval.Request) eval.Outcome

func (f evaluatorFunc) Evaluate(ctx context.Context, req eval.Request) eval.Outcome {
	return f(ctx, req)
}
