package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// A run whose first tick only succeeds steps, and then waits, gets an
// event when it starts that names them, and one when it finishes that
// names the rest: no step's transition goes unreported.
func TestEventsOfARunThatWaits(t *testing.T) {
	ns := namespace(t, "events")
	startController(t, ns)
	stepDef(t, ns, "say", "import \"vela/op\"\nm: op.#Message & {message: \"hi\"}\n")
	stepDef(t, ns, "apply-and-wait", applyAndWait)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: waits, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: first, type: say}
    - {name: second, type: say}
    - name: web
      type: apply-and-wait
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
	waitRun(t, ns, "waits", 20*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return len(r.Status.Steps) == 3 && r.Status.Steps[2].Reason == "Wait"
	})
	started := waitEvent(t, ns, "waits", "StepsProgressed", 10*time.Second)
	if want := "run started; steps: first succeeded; second succeeded"; started != want {
		t.Errorf("the first event says %q, want %q", started, want)
	}

	var dep appsv1.Deployment
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	dep.Status.Replicas, dep.Status.ReadyReplicas = 1, 1
	if err := env.Client.Status().Update(context.Background(), &dep); err != nil {
		t.Fatal(err)
	}
	waitRun(t, ns, "waits", 10*time.Second, finishedRun)
	want := []string{"run started; steps: first succeeded; second succeeded", "run succeeded; steps: web succeeded"}
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = runEvents(t, ns, "waits")
		if len(got) >= len(want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events of the run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// runEvents are the messages of the events about a run, sorted (events
// carry times in whole seconds, too coarse to order them).
func runEvents(t *testing.T, ns, run string) []string {
	t.Helper()
	var list corev1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "WorkflowRun" && e.InvolvedObject.Name == run {
			msgs = append(msgs, e.Message)
		}
	}
	slices.Sort(msgs)
	return msgs
}
