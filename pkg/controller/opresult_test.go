package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// In the community's flat style: the condition tests a status field the
// applied object does not have until a controller sets it.
const applyAndWaitFlat = `import "vela/op"

dep: op.#Apply & {value: parameter.value}
wait: op.#ConditionalWait & {
	continue: dep.value.status.readyReplicas != _|_ && dep.value.status.readyReplicas > 0
}
parameter: value: {...}
`

// A wait over a field absent from an op's result (the API server returns
// the new Deployment with an empty status) waits instead of failing the
// step, and the run goes on once the field is set.
func TestWaitOnAbsentStatusField(t *testing.T) {
	ns := namespace(t, "absent-field")
	startController(t, ns)
	stepDef(t, ns, "apply-and-wait-flat", applyAndWaitFlat)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: rollout, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: web
      type: apply-and-wait-flat
      properties:
        value:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: web}
          spec:
            replicas: 1
            selector: {matchLabels: {app: web}}
            template:
              metadata: {labels: {app: web}}
              spec: {containers: [{name: web, image: nginx}]}
`, ns))
	run := waitRun(t, ns, "rollout", 20*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return r.Status.Finished || len(r.Status.Steps) == 1 && r.Status.Steps[0].Reason == "Wait"
	})
	if run.Status.Finished {
		t.Fatalf("run finished %s (%s) before the Deployment had status.readyReplicas; want its step waiting", run.Status.Phase, run.Status.Message)
	}
	var dep appsv1.Deployment
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	dep.Status.Replicas, dep.Status.ReadyReplicas = 1, 1
	if err := env.Client.Status().Update(context.Background(), &dep); err != nil {
		t.Fatal(err)
	}
	run = waitRun(t, ns, "rollout", 20*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s (%s) after the Deployment became ready, want succeeded", run.Status.Phase, run.Status.Message)
	}
}
