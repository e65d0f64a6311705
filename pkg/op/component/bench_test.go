package component_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
)

// BenchmarkRenderMicroservice is one render op call of a K8S_MICROSERVICE
// StatefulSet with ports, env and a rollout partition, through an
// in-process evaluator whose cache already holds the compiled template.
func BenchmarkRenderMicroservice(b *testing.B) {
	late := &component.Deferred{}
	fam := component.New(component.Options{Types: shipped(b).Types(), Evaluator: late})
	ev := newEvaluator(b, component.Fixed{})
	late.Set(ev)
	render := fam.Ops()["render"]
	params := render.NewParams()
	if err := json.Unmarshal([]byte(`{
		"type": "K8S_MICROSERVICE", "name": "clustermanage", "namespace": "abm-daily",
		"context": {"appId": "testapp", "rollout": {"partition": 1, "name": "abmRolloutPartition"}},
		"properties": {"kind": "StatefulSet", "image": "nginx:1.27", "replicas": 3,
			"env": {"A": "1", "B": "2"}, "ports": [{"port": 8080}], "resources": {"limits": {"cpu": "1"}}}
	}`), params); err != nil {
		b.Fatal(err)
	}
	call := &op.Call{Name: op.Name{Provider: "component", Do: "render"}, Path: "render", Op: render, Params: params,
		Step: op.Step{Namespace: "team-a", StepID: "run/render"}}
	ctx := context.Background()
	if _, err := op.Direct.Run(ctx, call); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := op.Direct.Run(ctx, call)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(res.Returns.(map[string]any)["objects"].([]any)); n != 2 {
			b.Fatalf("%d objects, want 2", n)
		}
	}
}
