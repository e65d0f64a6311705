package transform

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// object parses a YAML manifest as the API server would return it; json
// numbers arrive as float64, as encoding/json gives them.
func object(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const deploymentDoc = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod, generation: 3}
spec: {replicas: 3}
status: {observedGeneration: 3, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3}
`

const statefulSetDoc = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: prod, generation: 2}
spec:
  replicas: 3
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}
status: {observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 2, currentRevision: db-1, updateRevision: db-2}
`

const daemonSetDoc = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system, generation: 4}
spec: {updateStrategy: {type: RollingUpdate}}
status: {observedGeneration: 4, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2, numberReady: 2}
`

func TestHealth(t *testing.T) {
	// edit returns doc with the field at path set to v (nil deletes it).
	edit := func(doc string, v any, path ...string) func(*testing.T) map[string]any {
		return func(t *testing.T) map[string]any {
			obj := object(t, doc)
			m := obj
			for _, k := range path[:len(path)-1] {
				next, ok := m[k].(map[string]any)
				if !ok {
					next = map[string]any{}
					m[k] = next
				}
				m = next
			}
			if v == nil {
				delete(m, path[len(path)-1])
			} else {
				m[path[len(path)-1]] = v
			}
			return obj
		}
	}
	same := func(doc string) func(*testing.T) map[string]any {
		return func(t *testing.T) map[string]any { return object(t, doc) }
	}
	for _, tc := range []struct {
		name    string
		objects []func(*testing.T) map[string]any
		message string // "" means healthy
	}{
		{"no objects", nil, ""},
		{"deployment rolled out", []func(*testing.T) map[string]any{same(deploymentDoc)}, ""},
		{"deployment generation not observed", []func(*testing.T) map[string]any{edit(deploymentDoc, 2, "status", "observedGeneration")},
			"Deployment prod/web: the Deployment controller has not observed generation 3 yet (observed 2)"},
		{"deployment no status yet", []func(*testing.T) map[string]any{edit(deploymentDoc, nil, "status")},
			"Deployment prod/web: the Deployment controller has not observed generation 3 yet (observed 0)"},
		{"deployment partly updated", []func(*testing.T) map[string]any{edit(deploymentDoc, 2, "status", "updatedReplicas")},
			"Deployment prod/web: 2 of 3 replicas updated"},
		{"deployment old pods left", []func(*testing.T) map[string]any{edit(deploymentDoc, 4, "status", "replicas")},
			"Deployment prod/web: 1 old replicas are pending termination"},
		{"deployment not available", []func(*testing.T) map[string]any{edit(deploymentDoc, 1, "status", "availableReplicas")},
			"Deployment prod/web: 1 of 3 updated replicas available"},
		{"deployment replicas default to 1", []func(*testing.T) map[string]any{edit(deploymentDoc, nil, "spec", "replicas")},
			"Deployment prod/web: 3 replicas updated, want 1 (scaling down)"},
		{"deployment scaling down: more available than wanted", []func(*testing.T) map[string]any{edit(deploymentDoc, 4, "status", "availableReplicas")},
			"Deployment prod/web: 4 replicas available, want 3 (scaling down)"},
		{"deployment scaled to zero", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			return object(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: off, generation: 1}, spec: {replicas: 0}, status: {observedGeneration: 1}}`)
		}}, ""},
		{"statefulset partition 1: replicas at or above it updated", []func(*testing.T) map[string]any{same(statefulSetDoc)}, ""},
		{"statefulset partition 1: only one updated", []func(*testing.T) map[string]any{edit(statefulSetDoc, 1, "status", "updatedReplicas")},
			"StatefulSet prod/db: 1 of 2 replicas at or above partition 1 updated"},
		{"statefulset partition 1: not ready", []func(*testing.T) map[string]any{edit(statefulSetDoc, 2, "status", "readyReplicas")},
			"StatefulSet prod/db: 2 of 3 replicas ready"},
		{"statefulset partition 0: two of three updated", []func(*testing.T) map[string]any{edit(statefulSetDoc, 0, "spec", "updateStrategy", "rollingUpdate", "partition")},
			"StatefulSet prod/db: 2 of 3 replicas updated"},
		{"statefulset no partition: revisions differ", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			obj := edit(statefulSetDoc, 3, "status", "updatedReplicas")(t)
			delete(obj["spec"].(map[string]any), "updateStrategy")
			return obj
		}}, "StatefulSet prod/db: rolling update to revision db-2 not complete (current revision db-1)"},
		{"statefulset no partition: all updated, no revisions in status", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			obj := edit(statefulSetDoc, 3, "status", "updatedReplicas")(t)
			delete(obj["spec"].(map[string]any), "updateStrategy")
			st := obj["status"].(map[string]any)
			delete(st, "currentRevision")
			delete(st, "updateRevision")
			return obj
		}}, ""},
		{"statefulset partition above replicas", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			obj := edit(statefulSetDoc, 5, "spec", "updateStrategy", "rollingUpdate", "partition")(t)
			obj["status"].(map[string]any)["updatedReplicas"] = float64(0)
			return obj
		}}, ""},
		{"statefulset OnDelete: ready is enough", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			obj := edit(statefulSetDoc, 0, "status", "updatedReplicas")(t)
			obj["spec"].(map[string]any)["updateStrategy"] = map[string]any{"type": "OnDelete"}
			return obj
		}}, ""},
		{"statefulset OnDelete: not ready", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			obj := edit(statefulSetDoc, 1, "status", "readyReplicas")(t)
			obj["spec"].(map[string]any)["updateStrategy"] = map[string]any{"type": "OnDelete"}
			return obj
		}}, "StatefulSet prod/db: 1 of 3 replicas ready"},
		{"daemonset rolled out", []func(*testing.T) map[string]any{same(daemonSetDoc)}, ""},
		{"daemonset not updated", []func(*testing.T) map[string]any{edit(daemonSetDoc, 1, "status", "updatedNumberScheduled")},
			"DaemonSet kube-system/agent: 1 of 2 scheduled pods updated"},
		{"daemonset not available", []func(*testing.T) map[string]any{edit(daemonSetDoc, 1, "status", "numberAvailable")},
			"DaemonSet kube-system/agent: 1 of 2 scheduled pods available"},
		{"other kinds are healthy once applied", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			return object(t, `{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {ports: [{port: 80}]}}`)
		}}, ""},
		{"a custom kind named Deployment is not judged", []func(*testing.T) map[string]any{func(t *testing.T) map[string]any {
			return object(t, `{apiVersion: example.com/v1, kind: Deployment, metadata: {name: x, generation: 9}}`)
		}}, ""},
		{"the first unhealthy object is named", []func(*testing.T) map[string]any{
			same(daemonSetDoc), edit(statefulSetDoc, 0, "status", "readyReplicas"), edit(deploymentDoc, 0, "status", "availableReplicas"),
		}, "StatefulSet prod/db: 0 of 3 replicas ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []map[string]any
			for _, mk := range tc.objects {
				objs = append(objs, mk(t))
			}
			res, err := runHealth(&healthParams{Objects: objs})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"healthy": tc.message == "", "message": tc.message}
			if diff := cmp.Diff(want, res.Returns); diff != "" {
				t.Errorf("returns (-want +got):\n%s", diff)
			}
		})
	}
}

func runHealth(p *healthParams) (op.Result, error) {
	o := NewKube().Ops()["health"]
	call := &op.Call{Name: op.Name{Provider: "kube", Do: "health"}, Path: "test.health", Op: o, Params: p, Class: o.Class(p)}
	return op.Direct.Run(context.Background(), call)
}

// Integers arrive as whatever the decoder made of them: int64 (CUE,
// CBOR), float64 (encoding/json), json.Number (a decoder with UseNumber).
// A field that is no whole number is a permanent error naming it.
func TestHealthNumbers(t *testing.T) {
	status := func(n any) map[string]any {
		return map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "generation": n},
			"spec":     map[string]any{"replicas": n},
			"status":   map[string]any{"observedGeneration": n, "replicas": n, "updatedReplicas": n, "availableReplicas": n},
		}
	}
	for _, n := range []any{int64(2), float64(2), json.Number("2"), int(2)} {
		res, err := runHealth(&healthParams{Objects: []map[string]any{status(n)}})
		if err != nil || res.Returns.(map[string]any)["healthy"] != true {
			t.Errorf("%T: %v %v, want healthy", n, res.Returns, err)
		}
	}
	for _, bad := range []any{"2", 2.5, true} {
		_, err := runHealth(&healthParams{Objects: []map[string]any{status(bad)}})
		if err == nil || !op.IsPermanent(err) || !strings.Contains(err.Error(), "Deployment web") ||
			!strings.Contains(err.Error(), "metadata.generation") {
			t.Errorf("%T %v: error %v, want a permanent one naming Deployment web and metadata.generation", bad, bad, err)
		}
	}
}

// Through the evaluator, both dialects: the objects decoded from CUE
// (its integers are int64) are judged, and the returns are filled in.
func TestHealthThroughTheEvaluator(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(NewKube())})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, template string }{
		{"kube dialect", `
import "vela/kube"

h: kube.#Health & {$params: objects: [parameter.deploy, parameter.sts]}
healthy: h.$returns.healthy
message: h.$returns.message
parameter: {deploy: {...}, sts: {...}}
`},
		{"flat dialect", `
import "vela/op"

h: op.#Health & {objects: [parameter.deploy, parameter.sts]}
healthy: h.healthy
message: h.message
parameter: {deploy: {...}, sts: {...}}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := object(t, statefulSetDoc)
			sts["status"].(map[string]any)["readyReplicas"] = 1
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "health", Template: tc.template},
				Parameters: map[string]any{"deploy": object(t, deploymentDoc), "sts": sts},
				Step:       op.Step{StepName: "s", StepID: "s-1"},
				Runner:     op.Direct,
				Outputs:    []string{"healthy", "message"},
			})
			if out.Phase != eval.Succeeded {
				t.Fatalf("outcome %s %s: %s", out.Phase, out.Reason, out.Message)
			}
			if out.Outputs[0].Value != false || out.Outputs[1].Value != "StatefulSet prod/db: 1 of 3 replicas ready" {
				t.Errorf("healthy, message = %v, %v", out.Outputs[0], out.Outputs[1])
			}
		})
	}
}
