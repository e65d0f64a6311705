package query_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/query"
)

// The stdlib schemas decode into the ops' params and take their returns,
// in both dialects (vela/query and the flat vela/ql), evaluated for real
// against the API server.
func TestSchemasThroughTheEvaluator(t *testing.T) {
	fx := newFixture(t, readRules...)
	local := kube.LocalAs(func(context.Context, op.Step) (client.Client, error) { return fx.runner, nil })
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(query.New(local), query.NewMulticluster(local))})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"web", "db-0", "web." + fx.ns, int64(80), []any{}}
	for _, tc := range []struct {
		name     string
		template string
		outputs  []string
	}{{
		name: "vela/query",
		template: `
import (
	"vela/query"
	"vela/multicluster"
)
l: query.#ListResourcesInApp & {$params: app: {name: "shop", filter: {kind: "Deployment", apiVersion: "apps/v1"}}}
p: query.#CollectPods & {$params: app: name: "shop"}
e: query.#CollectServiceEndpoints & {$params: app: {name: "shop", filter: components: ["web"]}}
c: multicluster.#ListClusters
`,
		outputs: []string{"l.$returns.list[0].object.metadata.name", "p.$returns.list[1].object.metadata.name",
			"e.$returns.list[0].endpoint.host", "e.$returns.list[0].endpoint.port", "c.$returns.outputs.clusters"},
	}, {
		name: "vela/ql and vela/multicluster",
		template: `
import (
	"vela/ql"
	"vela/multicluster"
)
l: ql.#ListResourcesInApp & {app: {name: "shop", filter: {kind: "Deployment", apiVersion: "apps/v1"}}}
p: ql.#CollectPods & {app: name: "shop"}
e: ql.#CollectServiceEndpoints & {app: {name: "shop", filter: components: ["web"]}}
c: multicluster.#ListClusters
`,
		outputs: []string{"l.list[0].object.metadata.name", "p.list[1].object.metadata.name",
			"e.list[0].endpoint.host", "e.list[0].endpoint.port", "c.$returns.outputs.clusters"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "query", Template: tc.template},
				Context:    map[string]any{"name": "r", "namespace": fx.ns},
				Step:       op.Step{RunName: "r", Namespace: fx.ns, StepName: "s", StepID: "s-1"},
				Outputs:    tc.outputs,
			})
			if out.Phase != eval.Succeeded {
				t.Fatalf("outcome %s: %s", out.Phase, out.Message)
			}
			var got []any
			for _, o := range out.Outputs {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
				got = append(got, o.Value)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("outputs (-want +got):\n%s", d)
			}
		})
	}
}

// KubeVela's flat op.#ListClusters fills outputs.
func TestFlatListClusters(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(query.NewMulticluster(kube.Local(nil)))})
	if err != nil {
		t.Fatal(err)
	}
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "clusters", Template: `
import "vela/op"
c: op.#ListClusters
n: len(c.outputs.clusters)
`},
		Step:    op.Step{RunName: "r", Namespace: "default", StepName: "s", StepID: "s-1"},
		Outputs: []string{"n"},
	})
	if out.Phase != eval.Succeeded || len(out.Outputs) != 1 || out.Outputs[0].Err != nil {
		t.Fatalf("outcome %s: %s %+v", out.Phase, out.Message, out.Outputs)
	}
	if d := cmp.Diff(int64(0), out.Outputs[0].Value); d != "" {
		t.Errorf("n (-want +got):\n%s", d)
	}
}

// An op only KubeVela core can answer fails the step, naming it.
func TestUnsupportedThroughTheEvaluator(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(query.New(kube.Local(nil)))})
	if err != nil {
		t.Fatal(err)
	}
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "tree", Template: `
import "vela/ql"
t: ql.#GetApplicationTree & {app: {name: "shop", namespace: "default", withTree: true}}
`},
		Step: op.Step{RunName: "r", Namespace: "default", StepName: "s", StepID: "s-1"},
	})
	if out.Phase != eval.Failed || !containsAll(out.Message, "query.listAppliedResources is not supported by Stepflow", "resource tracker") {
		t.Fatalf("outcome %s (%s): %s", out.Phase, out.Reason, out.Message)
	}
}
