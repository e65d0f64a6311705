package config_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// The stdlib schemas decode into the ops' params and take their returns,
// in both dialects (vela/config and KubeVela's legacy flat op.#...Config),
// evaluated for real against the API server: a config created in one
// evaluation is read and listed in the next, then deleted.
func TestSchemasThroughTheEvaluator(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(config.New(kube.Local(env.Client)))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                       string
		create, readList, deleteIt string
		outputs                    []string
	}{{
		name: "vela/config",
		create: `
import "vela/config"
c: config.#CreateConfig & {$params: {name: "db", namespace: context.namespace, config: {url: "jdbc:x", port: 3306}}}
`,
		readList: `
import "vela/config"
r: config.#ReadConfig & {$params: {name: "db", namespace: context.namespace}}
l: config.#ListConfig & {$params: {template: "any", namespace: context.namespace}}
`,
		deleteIt: `
import "vela/config"
d: config.#DeleteConfig & {$params: {name: "db", namespace: context.namespace}}
`,
		outputs: []string{"r.$returns.config.url", "r.$returns.config.port", "len(l.$returns.configs)"},
	}, {
		name: "flat vela/op",
		create: `
import "vela/op"
c: op.#CreateConfig & {name: "db", namespace: context.namespace, config: {url: "jdbc:x", port: 3306}}
`,
		readList: `
import "vela/op"
r: op.#ReadConfig & {name: "db", namespace: context.namespace}
l: op.#ListConfig & {template: "any", namespace: context.namespace}
`,
		deleteIt: `
import "vela/op"
d: op.#DeleteConfig & {name: "db", namespace: context.namespace}
`,
		outputs: []string{"r.config.url", "r.config.port", "len(l.configs)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			evaluate := func(template string, outputs []string) []any {
				t.Helper()
				out := ev.Evaluate(context.Background(), eval.Request{
					Definition: eval.Definition{Name: "config", Template: template},
					Context:    map[string]any{"name": "r", "namespace": ns},
					Step:       op.Step{RunName: "r", Namespace: ns, StepName: "s", StepID: "s-1"},
					Outputs:    outputs,
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
				return got
			}
			evaluate(tc.create, nil)
			if n := len(configSecrets(t, ns)); n != 1 {
				t.Fatalf("%d config Secrets after create, want 1", n)
			}
			if d := cmp.Diff([]any{"jdbc:x", int64(3306), int64(0)}, evaluate(tc.readList, tc.outputs)); d != "" {
				t.Errorf("read and list (-want +got):\n%s", d)
			}
			evaluate(tc.deleteIt, nil)
			if n := len(configSecrets(t, ns)); n != 0 {
				t.Errorf("%d config Secrets after delete, want 0", n)
			}
		})
	}
}
