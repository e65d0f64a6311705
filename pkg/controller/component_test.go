package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// renderApply renders a component with component.#Render and applies its
// first object.
const renderApply = `import (
	"vela/component"
	"vela/kube"
)

r: component.#Render & {$params: {
	type:       parameter.type
	name:       parameter.name
	properties: parameter.properties
	context: appId: "testapp"
}}
apply: kube.#Apply & {$params: value: r.$returns.objects[0]}
parameter: {
	type: string
	name: string
	properties: {...}
}
`

// A step renders components through ComponentDefinitions applied to the
// API server: the shipped K8S_MICROSERVICE as the chart installs it (in
// the system namespace), a type of the run's own namespace; an unknown
// type fails naming it, and a type whose template reaches for an effect
// op is refused, with nothing applied. The controller evaluates in its
// sandbox pool, so the component templates render in worker processes
// while the steps that call them wait.
func TestRenderComponentThroughDefinitions(t *testing.T) {
	ns := namespace(t, "render")
	sys := namespace(t, "sys-render")
	startController(t, sys)
	ctx := context.Background()

	shippedDef, err := os.ReadFile("../../charts/stepflow/definitions/components/k8s-microservice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var micro v1beta1.ComponentDefinition
	if err := yaml.UnmarshalStrict(shippedDef, &micro); err != nil {
		t.Fatal(err)
	}
	micro.Namespace = sys
	if err := env.Client.Create(ctx, &micro); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, &v1beta1.ComponentDefinition{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: settings, namespace: %s}
spec:
  schematic:
    cue:
      template: |
        parameter: greeting: string
        output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: context.name, data: greeting: parameter.greeting}
`, ns))
	applyYAML(t, &v1beta1.ComponentDefinition{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: sneaky, namespace: %s}
spec:
  schematic:
    cue:
      template: |
        import "vela/kube"
        side: kube.#Apply & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: "sneaky", namespace: "%s"}}}
        output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: context.name}
`, ns, ns))
	stepDef(t, sys, "render-apply", renderApply)

	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: render, namespace: %s}
spec:
  mode: {steps: DAG}
  workflowSpec:
    steps:
    - {name: web, type: render-apply, properties: {type: K8S_MICROSERVICE, name: web, properties: {image: "nginx:1.27", replicas: 2}}}
    - {name: settings, type: render-apply, properties: {type: settings, name: greetings, properties: {greeting: hello}}}
    - {name: unknown, type: render-apply, properties: {type: NO_SUCH_TYPE, name: x, properties: {}}}
    - {name: sneaky, type: render-apply, properties: {type: sneaky, name: peek, properties: {}}}
`, ns))
	run := waitRun(t, ns, "render", 60*time.Second, finishedRun)
	steps := map[string]v1alpha1.StepStatus{}
	for _, s := range run.Status.Steps {
		steps[s.Name] = s.StepStatus
	}
	for _, name := range []string{"web", "settings"} {
		if s := steps[name]; s.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
			t.Errorf("step %s: %s: %s", name, s.Phase, s.Message)
		}
	}
	for name, parts := range map[string][]string{
		"unknown": {`component "x" (type "NO_SUCH_TYPE")`, "unknown component type", `no ComponentDefinition "no-such-type"`},
		"sneaky":  {`component "peek" (type "sneaky")`, "kube.apply", "may not be called while rendering"},
	} {
		s := steps[name]
		if s.Phase != v1alpha1.WorkflowStepPhaseFailed {
			t.Errorf("step %s: %s (%s), want failed", name, s.Phase, s.Message)
		}
		for _, p := range parts {
			if !strings.Contains(s.Message, p) {
				t.Errorf("step %s: message %q does not contain %q", name, s.Message, p)
			}
		}
	}

	var dep appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	if c := dep.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Image != "nginx:1.27" || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment spec %+v", dep.Spec)
	}
	if l := dep.Labels; l["app.oam.dev/component"] != "web" || l["stepflow.dev/app-id"] != "testapp" {
		t.Errorf("Deployment labels %v", l)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "greetings"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["greeting"] != "hello" {
		t.Errorf("ConfigMap data %v", cm.Data)
	}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "sneaky"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused apply happened anyway: %v", err)
	}
	// The shipped type compiles as the definition reconciler checks it.
	waitComponentReady(t, sys, "k8s-microservice", func(c *metav1.Condition, _ *v1beta1.ComponentDefinition) bool {
		return c.Status == metav1.ConditionTrue
	})
}
