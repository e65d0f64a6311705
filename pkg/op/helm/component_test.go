package helm

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// The shipped HELM component type (definitions/components/helm.cue),
// rendered through component.#Render as apply-components would, with the
// chart from a real chart repository: release and namespace are the
// component's, the rollout partition reaches the chart value it names, 0
// without a rollout.
func TestHelmComponentType(t *testing.T) {
	repo := serveRepo(t, web("1.0.0"), web("1.1.0"), testChart{name: "broken", version: "0.1.0", files: map[string]string{
		"templates/cm.yaml": "{{ fail \"the sky is falling\" }}\n",
	}})
	src, err := definition.FromFile("../../../definitions/components/helm.cue")
	if err != nil {
		t.Fatal(err)
	}
	if src.Type != "component" || src.Name != "helm" {
		t.Fatalf("definitions/components/helm.cue is %s %q, want component helm", src.Type, src.Name)
	}
	late := &component.Deferred{}
	reg := op.NewRegistry().Add(builtin.New(), transform.New(), New(Options{}),
		component.New(component.Options{Types: component.Fixed{"helm": src.Definition}.Types(), Evaluator: late}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	late.Set(ev)
	step := eval.Definition{Name: "render-step", Template: `
import "vela/component"
r: component.#Render & {$params: parameter}
`}

	for _, tc := range []struct {
		name      string
		params    map[string]any
		partition int64
		value     string // the chart value the partition went to
		image     string
		wantErr   []string
	}{{
		name: "no rollout: partition 0; newest version",
		params: map[string]any{"type": "HELM", "name": "shop",
			"properties": map[string]any{"chart": "web", "repo": repo.URL}},
		partition: 0, image: "web:1.1.0",
	}, {
		name: "rollout: the partition reaches abmRolloutPartition, over the user's values",
		params: map[string]any{"type": "HELM", "name": "shop", "namespace": "abm-daily",
			"context":    map[string]any{"rollout": map[string]any{"partition": 1, "name": "abmRolloutPartition"}},
			"properties": map[string]any{"chart": "web", "repo": repo.URL, "version": "1.0.0", "values": map[string]any{"image": "web:canary", "abmRolloutPartition": 5}}},
		partition: 1, image: "web:canary",
	}, {
		name: "rollout with another value name",
		params: map[string]any{"type": "HELM", "name": "shop",
			"context":    map[string]any{"rollout": map[string]any{"partition": 2, "name": "replicas"}},
			"properties": map[string]any{"chart": repo.URL + "/charts/web-1.0.0.tgz"}},
		partition: 0, value: "replicas", image: "web:1.0.0",
	}, {
		name: "a chart that does not render fails the render, naming chart, version and Helm's message",
		params: map[string]any{"type": "HELM", "name": "shop",
			"properties": map[string]any{"chart": "broken", "repo": repo.URL}},
		wantErr: []string{`component "shop" (type "HELM")`, "chart broken version 0.1.0", "the sky is falling"},
	}, {
		name: "no chart: the parameter is named",
		params: map[string]any{"type": "HELM", "name": "shop",
			"properties": map[string]any{"repo": repo.URL}},
		wantErr: []string{`component "shop" (type "HELM")`, "chart"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: step, Parameters: tc.params,
				Step:    op.Step{Namespace: "team-a", StepName: "render", StepID: "run-1/render"},
				Outputs: []string{"r.$returns.objects"},
			})
			if tc.wantErr != nil {
				if out.Phase != eval.Failed {
					t.Fatalf("phase %s (%s), want failed", out.Phase, out.Message)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(out.Message, s) {
						t.Errorf("message %q does not say %q", out.Message, s)
					}
				}
				return
			}
			if out.Phase != eval.Succeeded {
				t.Fatalf("phase %s: %s", out.Phase, out.Message)
			}
			if err := out.Outputs[0].Err; err != nil {
				t.Fatalf("reading the objects: %v", err)
			}
			objs := plainObjects(t, out.Outputs[0].Value)
			ns := "team-a"
			if n, ok := tc.params["namespace"].(string); ok {
				ns = n
			}
			want := []string{
				"ServiceAccount/" + ns + "/shop", "ConfigMap/pinned/shop-config",
				"CustomResourceDefinition//widgets.example.com", "ClusterRole//shop-reader",
				"Service/" + ns + "/shop", "StatefulSet/" + ns + "/shop", "Gadget/" + ns + "/shop",
				// The component op stamps the namespace on kinds it does not
				// know as cluster scoped (the API server drops it there).
				"Widget/" + ns + "/shop",
			}
			if d := cmp.Diff(want, summary(objs)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			sts := objs[5]["spec"].(map[string]any)
			part := sts["updateStrategy"].(map[string]any)["rollingUpdate"].(map[string]any)["partition"]
			if fmt.Sprint(part) != fmt.Sprint(tc.partition) {
				t.Errorf("partition = %v, want %d", part, tc.partition)
			}
			if tc.value == "replicas" && fmt.Sprint(sts["replicas"]) != "2" {
				t.Errorf("replicas = %v, want the partition 2 there", sts["replicas"])
			}
			image := sts["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
			if image != tc.image {
				t.Errorf("image = %v, want %s", image, tc.image)
			}
			labels := objs[5]["metadata"].(map[string]any)["labels"].(map[string]any)
			if labels["app.oam.dev/component"] != "shop" {
				t.Errorf("labels = %v, want the component's", labels)
			}
		})
	}
}

// plainObjects is the objects of a step output as maps.
func plainObjects(t *testing.T, v any) []map[string]any {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("objects are %T, want a list", v)
	}
	var out []map[string]any
	for _, o := range list {
		m, ok := o.(map[string]any)
		if !ok {
			t.Fatalf("an object is %T", o)
		}
		out = append(out, m)
	}
	return out
}
