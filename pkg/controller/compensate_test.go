package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// chartStepDef installs the chart's manifest of the shipped step definition
// name, as helm install does: its default compensation included.
func chartStepDef(t *testing.T, ns, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "stepflow", "definitions", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var def v1beta1.WorkflowStepDefinition
	if err := yaml.UnmarshalStrict(b, &def); err != nil {
		t.Fatal(err)
	}
	def.Namespace = ns
	if err := env.Client.Create(context.Background(), &def); err != nil {
		t.Fatal(err)
	}
}

// A run with onFailure: Compensate whose apply-object step succeeded and
// whose next step fails rolls back through the real controller: the
// shipped apply-object's default compensation, delete-object, deletes
// the ConfigMap it applied; the run ends rolledBack with Failed True.
func TestRunRollsBackWhatItApplied(t *testing.T) {
	ns := namespace(t, "rollback")
	sys := namespace(t, "sys-rollback")
	startController(t, sys)
	chartStepDef(t, sys, "apply-object")
	chartStepDef(t, sys, "delete-object")
	stepDef(t, sys, "broken", `import "vela/op"

fail: op.#Fail & {message: "broken on purpose"}
`)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: saga, namespace: %s}
spec:
  onFailure: Compensate
  workflowSpec:
    steps:
    - name: make
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: made}, data: {k: v}}
    - name: keep
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: kept}}
      compensate: {disabled: true}
    - name: boom
      type: broken
`, ns))
	run := waitRun(t, ns, "saga", 60*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunRolledBack || run.Status.RollbackError != "" {
		b, _ := yaml.Marshal(run.Status)
		t.Fatalf("run %s (rollbackError %q), want rolledBack; status:\n%s", run.Status.Phase, run.Status.RollbackError, b)
	}
	if c := meta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionFailed); c == nil || c.Status != "True" || c.Reason != "RolledBack" {
		t.Errorf("Failed condition = %+v, want True (RolledBack)", c)
	}
	comp := map[string]*v1alpha1.CompensationStatus{}
	for _, s := range run.Status.Steps {
		comp[s.Name] = s.Compensation
	}
	if c := comp["make"]; c == nil || c.Type != "delete-object" || c.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
		t.Errorf("make's compensation = %+v, want delete-object succeeded", c)
	}
	if c := comp["keep"]; c != nil {
		t.Errorf("keep's compensation = %+v, want none (disabled)", c)
	}
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "made"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap made: %v, want deleted by the rollback", err)
	}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "kept"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("ConfigMap kept (compensation disabled): %v, want it there", err)
	}

	// The same through a Workflow: its onFailure applies to a run that
	// names it and says nothing itself.
	applyYAML(t, &v1alpha1.Workflow{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata: {name: saga, namespace: %s}
onFailure: Compensate
steps:
- name: make
  type: apply-object
  properties:
    value: {apiVersion: v1, kind: ConfigMap, metadata: {name: made-by-ref}}
- name: boom
  type: broken
`, ns))
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: by-ref, namespace: %s}
spec: {workflowRef: saga}
`, ns))
	run = waitRun(t, ns, "by-ref", 60*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunRolledBack {
		t.Errorf("run by workflowRef: %s, want rolledBack (the Workflow's onFailure)", run.Status.Phase)
	}
	err = env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "made-by-ref"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap made-by-ref: %v, want deleted by the rollback", err)
	}
}
