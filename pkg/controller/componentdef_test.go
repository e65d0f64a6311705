package controller_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// waitComponentReady waits until the ComponentDefinition's Ready
// condition satisfies ok, and returns the definition.
func waitComponentReady(t *testing.T, ns, name string, ok func(c *metav1.Condition, def *v1beta1.ComponentDefinition) bool) *v1beta1.ComponentDefinition {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var def v1beta1.ComponentDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &def); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(def.Status.Conditions, "Ready"); c != nil && ok(c, &def) {
			return &def
		}
		if time.Now().After(deadline) {
			t.Fatalf("ComponentDefinition %s/%s: status %+v", ns, name, def.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A KubeVela ComponentDefinition applies unchanged (strict field
// validation, as kubectl apply does) and compiles: Ready=True. A broken
// one is Ready=False naming the CUE position, and an update is compiled
// again.
func TestComponentDefinitionReady(t *testing.T) {
	ns := namespace(t, "compdef")
	startController(t, ns)
	ctx := context.Background()

	// KubeVela's shape, every field of it, through the API server as
	// kubectl sends it: unknown fields would be refused.
	doc, err := os.ReadFile("../../api/v1beta1/testdata/webservice-component.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(doc, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := env.Client.Create(ctx, &u, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
		t.Fatalf("applying a KubeVela ComponentDefinition: %v", err)
	}
	def := waitComponentReady(t, ns, "webservice", func(c *metav1.Condition, def *v1beta1.ComponentDefinition) bool {
		return c.Status == metav1.ConditionTrue && c.Reason == "Compiled" && def.Status.ObservedGeneration == def.Generation
	})
	if def.Spec.Workload.Definition.Kind != "Deployment" || def.Spec.Status == nil || def.Spec.Status.HealthPolicy == "" ||
		len(def.Spec.ChildResourceKinds) != 1 || def.Spec.Extension == nil {
		t.Errorf("KubeVela fields were not kept: %+v", def.Spec)
	}

	// A syntax error: Ready=False, naming the file, line and column (the
	// operand missing after "1 +" is found at the closing brace).
	broken := &v1beta1.ComponentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}}
	broken.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "output: {\n\tkind: 1 + \n}\n"}}
	if err := env.Client.Create(ctx, broken); err != nil {
		t.Fatal(err)
	}
	waitComponentReady(t, ns, "broken", func(c *metav1.Condition, _ *v1beta1.ComponentDefinition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == "TemplateError" && strings.Contains(c.Message, "broken.cue:3:1")
	})

	// An update is compiled again: conflicting values (no parameter or
	// context could cure them) make the good definition not Ready, at the
	// new generation.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var def v1beta1.ComponentDefinition
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "webservice"}, &def); err != nil {
			return err
		}
		def.Spec.Schematic.CUE.Template = "output: kind: \"Deployment\"\noutput: kind: \"StatefulSet\"\nparameter: {}\n"
		return env.Client.Update(ctx, &def)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitComponentReady(t, ns, "webservice", func(c *metav1.Condition, def *v1beta1.ComponentDefinition) bool {
		return c.Status == metav1.ConditionFalse && c.ObservedGeneration == def.Generation && def.Generation > 1 &&
			strings.Contains(c.Message, "webservice.cue:") && strings.Contains(c.Message, "conflicting values")
	})

	// A step definition of the same name is a different thing: it is not
	// made Ready by the component's reconciler, nor the other way round.
	stepDef(t, ns, "webservice", "import \"vela/op\"\nm: op.#Message & {message: \"hi\"}\n")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var step v1beta1.WorkflowStepDefinition
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "webservice"}, &step); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(step.Status.Conditions, "Ready"); c != nil && c.Status == metav1.ConditionTrue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("step definition status %+v", step.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var comp v1beta1.ComponentDefinition
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "webservice"}, &comp); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(comp.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("the component's condition changed with the step definition: %+v", comp.Status.Conditions)
	}
}
