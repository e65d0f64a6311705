package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// oldCUEStep is written for CUE before v0.11, as community definitions
// are: it adds lists and imports a package it does not use.
const oldCUEStep = `import (
	"strings"
	"vela/op"
	"vela/kube"
)

parameter: {
	name: string
	args: [...string]
}
let defaults = ["--log=json"]
apply: kube.#Apply & {
	$params: value: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		metadata: name: parameter.name
		data: args: strings.Join(defaults + parameter.args + ["--end"], " ")
	}
}
`

// A definition written for an older CUE is Ready, with a Rewritten
// condition naming each rewrite and its position, and a run of it
// evaluates the rewritten template.
func TestOldCUEDefinitionIsReadyAndRuns(t *testing.T) {
	ns := namespace(t, "cuedrift")
	startController(t, ns)
	ctx := context.Background()
	stepDef(t, ns, "old-cue", oldCUEStep)

	deadline := time.Now().Add(30 * time.Second)
	var def v1beta1.WorkflowStepDefinition
	for {
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "old-cue"}, &def); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(def.Status.Conditions, v1beta1.ConditionReady); c != nil {
			if c.Status != metav1.ConditionTrue {
				t.Fatalf("Ready = %s %s: %s", c.Status, c.Reason, c.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Ready condition: %+v", def.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := meta.FindStatusCondition(def.Status.Conditions, definition.ConditionRewritten)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != def.Generation {
		t.Fatalf("Rewritten condition = %+v", c)
	}
	for _, want := range []string{
		`old-cue.cue:3:2: unused import "vela/op" removed`,
		"old-cue.cue:17:37: list addition (+) rewritten to list.Concat",
	} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Rewritten message %q does not say %q", c.Message, want)
		}
	}

	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: old-cue, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: apply
      type: old-cue
      properties: {name: drift, args: ["-v", "--port=80"]}
`, ns))
	run := waitRun(t, ns, "old-cue", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("phase %s: %s", run.Status.Phase, run.Status.Message)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "drift"}, &cm); err != nil {
		t.Fatal(err)
	}
	if got, want := cm.Data["args"], "--log=json -v --port=80 --end"; got != want {
		t.Errorf("args = %q, want %q", got, want)
	}

	// A definition that loads as written has no Rewritten condition.
	stepDef(t, ns, "new-cue", "import \"vela/op\"\nm: op.#Message & {message: \"hi\"}\n")
	for {
		var fresh v1beta1.WorkflowStepDefinition
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "new-cue"}, &fresh); err != nil {
			t.Fatal(err)
		}
		if meta.IsStatusConditionTrue(fresh.Status.Conditions, v1beta1.ConditionReady) {
			if c := meta.FindStatusCondition(fresh.Status.Conditions, definition.ConditionRewritten); c != nil {
				t.Errorf("a current template has %+v", c)
			}
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("new-cue not Ready: %+v", fresh.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
