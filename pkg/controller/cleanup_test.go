package controller_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// runNames are the names of the runs in ns.
func runNames(t *testing.T, ns string) []string {
	t.Helper()
	var list v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.Items {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	return names
}

func waitGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 30*time.Second, "run "+name+" is deleted", func() bool {
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &v1alpha1.WorkflowRun{})
		return apierrors.IsNotFound(err)
	})
}

// finishRun creates a run (its metadata and spec in YAML flow style) and
// waits until it has finished.
func finishRun(t *testing.T, ns, name, labels, spec string) *v1alpha1.WorkflowRun {
	t.Helper()
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: %s, namespace: %s, labels: {%s}}
spec: %s
`, name, ns, labels, spec))
	return waitRun(t, ns, name, 30*time.Second, finishedRun)
}

// A finished run is deleted ttlSecondsAfterFinished (its own, else the
// configured default) after its end time, not before: the reconciler
// asks to be woken exactly then. The newest succeeded DEPLOY runs of an
// application and scope are kept past their TTL, and one is deleted once a
// newer DEPLOY run succeeds.
func TestTTLAfterFinishedKeepsRollbackTargets(t *testing.T) {
	ns := namespace(t, "cleanup-ttl")
	stepDef(t, ns, "noop", `parameter: {}`)
	t0 := time.Now().Truncate(time.Second)
	clock := &testClock{t: t0}
	hour := int32(3600)
	c := startClockedController(t, clock, controller.Config{Cleanup: controller.CleanupConfig{TTLSecondsAfterFinished: &hour}}, ns)
	const steps = `{workflowSpec: {steps: [{name: only, type: noop}]}}`
	const ttl60 = `{ttlSecondsAfterFinished: 60, workflowSpec: {steps: [{name: only, type: noop}]}}`
	deploy := fmt.Sprintf("%s: shop, %s: %s, %s: DEPLOY", app.LabelAppID, app.LabelScope, ns, app.LabelCategory)

	own := finishRun(t, ns, "own-ttl", "", ttl60)
	if !own.Status.EndTime.Time.Equal(t0) {
		t.Fatalf("endTime %s, want the injected clock's %s", own.Status.EndTime, t0)
	}
	finishRun(t, ns, "default-ttl", "", steps)
	for i := 1; i <= 4; i++ {
		clock.Set(t0.Add(time.Duration(i) * time.Second))
		if r := finishRun(t, ns, fmt.Sprintf("deploy-%d", i), deploy, ttl60); r.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("deploy-%d is %s", i, r.Status.Phase)
		}
	}

	reconcile := func(run string) ctrl.Result {
		t.Helper()
		res, err := c.Cleanup.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "run/" + run}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	clock.Set(t0)
	if res := reconcile("own-ttl"); res.RequeueAfter != time.Minute {
		t.Errorf("at the end: RequeueAfter %s, want 1m0s", res.RequeueAfter)
	}
	if res := reconcile("default-ttl"); res.RequeueAfter != time.Hour {
		t.Errorf("the default TTL: RequeueAfter %s, want 1h0m0s", res.RequeueAfter)
	}
	clock.Set(t0.Add(59 * time.Second))
	if res := reconcile("own-ttl"); res.RequeueAfter != time.Second {
		t.Errorf("a second before: RequeueAfter %s, want 1s", res.RequeueAfter)
	}
	if got := runNames(t, ns); len(got) != 6 {
		t.Fatalf("runs before any TTL ran out: %v, want all 6", got)
	}

	// Past every TTL of 60s: the run with its own TTL goes, and so does
	// deploy-1, no longer one of the newest 3; deploy-2..4 stay.
	clock.Set(t0.Add(65 * time.Second))
	for _, name := range []string{"own-ttl", "default-ttl", "deploy-1", "deploy-2", "deploy-3", "deploy-4"} {
		poke(t, &v1alpha1.WorkflowRun{}, types.NamespacedName{Namespace: ns, Name: name})
	}
	waitGone(t, ns, "own-ttl")
	waitGone(t, ns, "deploy-1")
	for _, name := range []string{"deploy-2", "deploy-3", "deploy-4"} {
		if res := reconcile(name); res.RequeueAfter != 0 {
			t.Errorf("%s: RequeueAfter %s, want none (a rollback target)", name, res.RequeueAfter)
		}
	}
	if got, want := fmt.Sprint(runNames(t, ns)), "[default-ttl deploy-2 deploy-3 deploy-4]"; got != want {
		t.Fatalf("runs %s, want %s", got, want)
	}

	// A newer DEPLOY run succeeds: deploy-2 is no longer a rollback
	// target, and its TTL ran out long ago.
	clock.Set(t0.Add(70 * time.Second))
	finishRun(t, ns, "deploy-5", deploy, ttl60)
	waitGone(t, ns, "deploy-2")
	if got, want := fmt.Sprint(runNames(t, ns)), "[default-ttl deploy-3 deploy-4 deploy-5]"; got != want {
		t.Errorf("runs %s, want %s", got, want)
	}
}

// A Workflow's history limits keep its newest succeeded and failed runs
// and delete older ones as runs finish; a rollback target is kept and does
// not count. A schedule's limits (default 3 succeeded) do the same for its
// runs.
func TestHistoryLimits(t *testing.T) {
	ns := namespace(t, "cleanup-history")
	stepDef(t, ns, "maybe-fail", `import "vela/builtin"

parameter: {}
if context.fail != _|_ {
	fail: builtin.#Fail & {$params: message: "asked to fail"}
}
`)
	applyYAML(t, &v1alpha1.Workflow{}, fmt.Sprintf(`
metadata: {name: wf, namespace: %s}
successfulRunsHistoryLimit: 2
failedRunsHistoryLimit: 1
steps:
- {name: only, type: maybe-fail}
`, ns))
	applyYAML(t, &v1alpha1.Workflow{}, fmt.Sprintf(`
metadata: {name: unlimited, namespace: %s}
steps:
- {name: only, type: maybe-fail}
`, ns))
	t0 := time.Now().Truncate(time.Second)
	clock := &testClock{t: t0}
	startClockedController(t, clock, controller.Config{}, ns)
	deploy := fmt.Sprintf("%s: shop, %s: %s, %s: DEPLOY", app.LabelAppID, app.LabelScope, ns, app.LabelCategory)
	for i, r := range []struct{ name, labels, spec string }{
		{"target", deploy, `{workflowRef: wf}`},
		{"ok-1", "", `{workflowRef: wf}`},
		{"failed-1", "", `{workflowRef: wf, context: {fail: true}}`},
		{"ok-2", "", `{workflowRef: wf}`},
		{"other-1", "", `{workflowRef: unlimited}`},
		{"ok-3", "", `{workflowRef: wf}`},
		{"failed-2", "", `{workflowRef: wf, context: {fail: true}}`},
		{"other-2", "", `{workflowRef: unlimited, context: {fail: true}}`},
		{"inline", "", `{workflowRef: wf, workflowSpec: {steps: [{name: only, type: maybe-fail}]}}`},
	} {
		clock.Set(t0.Add(time.Duration(i) * time.Second))
		finishRun(t, ns, r.name, r.labels, r.spec)
	}
	waitGone(t, ns, "ok-1")
	waitGone(t, ns, "failed-1")
	// The history reconciles of the last runs are done once failed-1 is
	// gone; nothing else may go.
	if got, want := fmt.Sprint(runNames(t, ns)), "[failed-2 inline ok-2 ok-3 other-1 other-2 target]"; got != want {
		t.Errorf("runs %s, want %s", got, want)
	}

	// A schedule keeps its newest succeeded run (successfulRunsHistoryLimit 1).
	applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: hourly, namespace: %s}
spec: {schedule: "0 * * * *", workflowRef: unlimited, successfulRunsHistoryLimit: 1}
`, ns))
	h := t0.Truncate(time.Hour)
	var names []string
	for i := 2; i <= 4; i++ {
		at := h.Add(time.Duration(i) * time.Hour)
		clock.Set(at.Add(time.Second))
		pokeSchedule(t, ns, "hourly")
		name := fmt.Sprintf("hourly-%d", at.Unix()/60)
		waitRun(t, ns, name, 30*time.Second, finishedRun)
		names = append(names, name)
	}
	waitGone(t, ns, names[0])
	waitGone(t, ns, names[1])
	if got := runsOf(t, ns, "hourly"); len(got) != 1 || got[0] != names[2] {
		t.Errorf("schedule's runs %v, want only %s", got, names[2])
	}
}
