package helm

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// helm.#Render and its flat twin op.#HelmRender decode into the same Params
// and give the same objects to the template.
func TestDialects(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"))
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(New(Options{}))})
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"chart": "web", "repo": repo.URL, "version": "1.0.0", "values": map[string]any{"abmRolloutPartition": 3}}
	for _, def := range []eval.Definition{
		{Name: "vela-helm", Template: `
import "vela/helm"
parameter: {...}
r: helm.#Render & {$params: parameter & {release: context.name, namespace: context.namespace}}
objects: r.$returns.objects
`},
		{Name: "vela-op", Template: `
import "vela/op"
parameter: {...}
r: op.#HelmRender & parameter & {release: context.name, namespace: context.namespace}
objects: r.objects
`},
	} {
		t.Run(def.Name, func(t *testing.T) {
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: def, Parameters: params,
				Context: map[string]any{"name": "shop", "namespace": "apps"},
				Step:    op.Step{Namespace: "apps", StepName: "render", StepID: "run-1/render"},
				Outputs: []string{"objects[5].spec.updateStrategy.rollingUpdate.partition", "objects[5].metadata.namespace", "len(objects)"},
			})
			if out.Phase != eval.Succeeded {
				t.Fatalf("phase %s: %s", out.Phase, out.Message)
			}
			var got []any
			for _, o := range out.Outputs {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
				got = append(got, o.Value)
			}
			if d := cmp.Diff("[3 apps 8]", fmt.Sprint(got)); d != "" {
				t.Errorf("partition, namespace, count (-want +got):\n%s", d)
			}
		})
	}
}
