package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// `stepflow step run` renders components with the ComponentDefinitions of
// the kubeconfig's cluster: the shipped K8S_MICROSERVICE applied to the
// step's namespace renders; an unknown type fails naming it.
func TestStepRunRendersComponents(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "step-render"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	src, err := definition.FromFile("../../definitions/components/k8s-microservice.cue")
	if err != nil {
		t.Fatal(err)
	}
	def := &v1beta1.ComponentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: src.Name}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: src.Template}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	step := writeFile(t, "render.cue", `import "vela/component"

r: component.#Render & {$params: parameter}
parameter: {...}
`)

	res := stepRun(t, "--kubeconfig", kc, "-n", ns, "-f", step,
		"--properties", `{"type": "K8S_MICROSERVICE", "name": "web", "properties": {"image": "nginx:1.27", "kind": "StatefulSet"}}`)
	if res.Outcome != "succeeded" {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Message)
	}
	v, _ := res.Value.(map[string]any)
	r, _ := v["r"].(map[string]any)
	returns, _ := r["$returns"].(map[string]any)
	objects, _ := returns["objects"].([]any)
	if len(objects) != 1 {
		t.Fatalf("objects %v, want the StatefulSet", returns)
	}
	sts, _ := objects[0].(map[string]any)
	meta, _ := sts["metadata"].(map[string]any)
	if sts["kind"] != "StatefulSet" || meta["name"] != "web" || meta["namespace"] != ns {
		t.Errorf("rendered %v", sts)
	}

	res = stepRun(t, "--kubeconfig", kc, "-n", ns, "-f", step,
		"--properties", `{"type": "NO_SUCH_TYPE", "name": "web", "properties": {}}`)
	if res.Outcome != "failed" || !strings.Contains(res.Message, `unknown component type: no ComponentDefinition "no-such-type"`) {
		t.Errorf("unknown type: outcome %s: %s", res.Outcome, res.Message)
	}
}
