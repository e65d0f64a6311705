package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// operate applies an engine operation to the run's status on the API
// server, as the CLI does.
func operate(t *testing.T, ns, name string, fn func(st *v1alpha1.WorkflowRunStatus) error) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var run v1alpha1.WorkflowRun
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &run); err != nil {
			return err
		}
		if err := fn(&run.Status); err != nil {
			return err
		}
		return env.Client.Status().Update(context.Background(), &run)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatusSuspendFollowsTheRun: on a real API server, status.suspend is
// true while a suspend step holds the run and false after a resume, as in
// KubeVela; a run suspended from outside stays suspended when the step
// that held it is resumed, until the run is resumed.
func TestStatusSuspendFollowsTheRun(t *testing.T) {
	ns := namespace(t, "suspendflag")
	shippedStepDef(t, ns, "suspend")
	startController(t, "vela-system")
	run := &v1alpha1.WorkflowRun{}
	applyYAML(t, run, fmt.Sprintf(`
metadata: {name: gates, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: first, type: suspend}
    - {name: second, type: suspend}
`, ns))
	heldBy := func(step string) func(*v1alpha1.WorkflowRun) bool {
		return func(r *v1alpha1.WorkflowRun) bool {
			for _, s := range r.Status.Steps {
				if s.Name == step && s.Phase == v1alpha1.WorkflowStepPhaseSuspending {
					return r.Status.Phase == v1alpha1.WorkflowRunSuspending
				}
			}
			return false
		}
	}
	got := waitRun(t, ns, "gates", 20*time.Second, heldBy("first"))
	if !got.Status.Suspend || got.Status.SuspendState != engine.SuspendStateSteps {
		t.Fatalf("held by step first: status.suspend=%v suspendState=%q, want true, %q", got.Status.Suspend, got.Status.SuspendState, engine.SuspendStateSteps)
	}

	operate(t, ns, "gates", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "") })
	got = waitRun(t, ns, "gates", 20*time.Second, heldBy("second"))
	if !got.Status.Suspend {
		t.Fatalf("held by step second after the resume of first: status.suspend=false")
	}

	// Suspended from outside while second holds it; resuming second does
	// not resume the run.
	operate(t, ns, "gates", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Suspend(st, "") })
	operate(t, ns, "gates", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "second") })
	time.Sleep(2 * time.Second) // ticks of the controller, if any, would finish the run
	got = waitRun(t, ns, "gates", time.Second, func(*v1alpha1.WorkflowRun) bool { return true })
	if got.Status.Finished || !got.Status.Suspend || got.Status.SuspendState != engine.SuspendStateOperator {
		t.Fatalf("suspended from outside, step second resumed: finished=%v status.suspend=%v suspendState=%q; want unfinished, true, %q",
			got.Status.Finished, got.Status.Suspend, got.Status.SuspendState, engine.SuspendStateOperator)
	}

	operate(t, ns, "gates", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "") })
	got = waitRun(t, ns, "gates", 20*time.Second, finishedRun)
	if got.Status.Phase != v1alpha1.WorkflowRunSucceeded || got.Status.Suspend || got.Status.SuspendState != "" {
		t.Fatalf("after the resume: phase %s, status.suspend=%v suspendState=%q; want succeeded, false, empty", got.Status.Phase, got.Status.Suspend, got.Status.SuspendState)
	}
}
