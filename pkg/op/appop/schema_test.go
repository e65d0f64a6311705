package appop

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// The stdlib schemas decode into the ops' params and take their returns,
// in both dialects: a rollback written as a template, evaluated for real.
func TestSchemasThroughTheEvaluator(t *testing.T) {
	ns := newNamespace(t)
	src := grayRelease(t)
	finish(t, launch(t, ns, "v2", "DEPLOY", src), v1alpha1.WorkflowRunSucceeded, time.Now())
	own := launch(t, ns, "v3", "DEPLOY", src)

	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(New(env.Client, &identities{}))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		template string
		outputs  []string
	}{{
		name: "vela/app",
		template: `
import "vela/app"
let Ctx = context
c: app.#Components & {$params: {components: [{type: "K8S_MICROSERVICE", name: "clustermanage"}], context: Ctx}}
t: app.#LatestRun
r: app.#Relaunch & {$params: {name: "v3-rollback-a", from: t.$returns.name, category: "ROLLBACK", context: quiet: true}}
`,
		outputs: []string{"c.$returns.components[0].properties.name", "c.$returns.components[0].clusters", "t.$returns.name", "r.$returns.created"},
	}, {
		name: "vela/op",
		template: `
import "vela/op"
let Ctx = context
c: op.#AppComponents & {components: [{type: "K8S_MICROSERVICE", name: "clustermanage"}], context: Ctx}
t: op.#LatestRun
r: op.#Relaunch & {name: "v3-rollback-b", from: t.name, category: "ROLLBACK", context: quiet: true}
`,
		outputs: []string{"c.resolved[0].properties.name", "c.resolved[0].clusters", "t.name", "r.created"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "rollback", Template: tc.template},
				Context:    map[string]any{"name": own.Name, "namespace": ns, "clusterId": "master"},
				Step:       stepOf(own),
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
			if d := cmp.Diff([]any{"master", []any{}, "v2", true}, got); d != "" {
				t.Errorf("outputs (-want +got):\n%s", d)
			}
		})
	}
}
