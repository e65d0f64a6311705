package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// The API server's real answers to writes too large, and to writes
// refused for other reasons: only the first kind ends a run.
func TestRefusedForSize(t *testing.T) {
	ns := namespace(t, "refusals")
	ctx := context.Background()
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}}
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	configMap := func(name string, size int) error {
		return env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string]string{"k": strings.Repeat("x", size)}})
	}
	status := func(size int) error {
		r := run.DeepCopy()
		before := r.DeepCopy()
		r.Status.Message = strings.Repeat("y", size)
		return env.Client.Status().Patch(ctx, r, client.MergeFrom(before))
	}
	for _, c := range []struct {
		name    string
		err     error
		refused bool
	}{
		{"ConfigMap over 1 MiB (422 FieldValueTooLong)", configMap("over-1mib", 1100<<10), true},
		{"request over 3 MiB (413)", configMap("over-3mib", 4<<20), true},
		{"object over etcd's 1.5 MiB (500 from etcd)", status(1600 << 10), true},
		{"status over 3 MiB (413)", status(4 << 20), true},
		{"wrapped as the journal store wraps it", fmt.Errorf("saving the journal: %w", configMap("wrapped", 1100<<10)), true},
		{"label value too long (422, not a size)", env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "label", Labels: map[string]string{"k": strings.Repeat("l", 64)}}}), false},
		{"already exists", env.Client.Create(ctx, &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"},
			Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{}}}), false},
		{"not an API error", errors.New("connection refused"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("the write was not refused")
			}
			if got := controller.RefusedForSize(c.err); got != c.refused {
				t.Errorf("RefusedForSize(%v) = %t, want %t", c.err, got, c.refused)
			}
		})
	}
}

// waitEvent waits for an event about the run with the given reason, read
// from the API server, and returns its message.
func waitEvent(t *testing.T, ns, run, reason string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for time.Now().Before(deadline) {
		var list corev1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "WorkflowRun" && e.InvolvedObject.Name == run {
				if e.Reason == reason {
					return e.Message
				}
				seen = append(seen, e.Reason)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s event for run %s/%s within %s; events seen: %v", reason, ns, run, timeout, seen)
	return ""
}

// A run whose status no longer fits in its object, because the run's own
// spec takes nearly all of etcd's 1.5 MiB, ends failed with a
// WriteRefused condition and event instead of retrying the write forever.
func TestStatusRefusedForSizeFailsTheRun(t *testing.T) {
	ns := namespace(t, "refused-status")
	startController(t, ns)
	stepDef(t, ns, "say", "import \"vela/op\"\nm: op.#Message & {message: \"step \\(context.stepName) says hello\"}\nparameter: filler?: string\n")
	ctx := context.Background()
	var steps []v1alpha1.WorkflowStep
	for i := 0; i < 60; i++ {
		steps = append(steps, v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: fmt.Sprintf("s%02d", i), Type: "say"}})
	}
	// The filler, a property of the first step, is sized so that the run,
	// as created, is about 8 KiB short of etcd's limit: a status of 60
	// steps does not fit, a failed phase does.
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "huge"}}
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: steps}
	base, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	const etcdLimit = 1572864
	filler := strings.Repeat("f", etcdLimit-len(base)-10<<10)
	steps[0].Properties = &runtime.RawExtension{Raw: []byte(`{"filler":"` + filler + `"}`)}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	got := waitRun(t, ns, "huge", 60*time.Second, finishedRun)
	if got.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("phase %s, want failed", got.Status.Phase)
	}
	c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionFailed)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != controller.ReasonWriteRefused || !strings.Contains(c.Message, "status") {
		b, _ := yaml.Marshal(got.Status.Conditions)
		t.Fatalf("want a Failed condition with reason %s naming the status write; conditions:\n%s", controller.ReasonWriteRefused, b)
	}
	// All four conditions a finished run has; Ready is not known.
	for _, typ := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionSucceeded, v1alpha1.ConditionSuspended} {
		if c := meta.FindStatusCondition(got.Status.Conditions, typ); c == nil || c.Reason != controller.ReasonWriteRefused {
			t.Errorf("condition %s = %+v, want one with reason %s", typ, c, controller.ReasonWriteRefused)
		}
	}
	msg := waitEvent(t, ns, "huge", controller.ReasonWriteRefused, 10*time.Second)
	if !strings.Contains(msg, "status") || !strings.Contains(msg, "bytes") {
		t.Errorf("event message %q should name the write and its size", msg)
	}
}

// The three oversized runs: 50 steps of 100 KiB each of #Log
// lines, of outputs, of messages. Each ends, and visibly: failed with a
// reason and a Warning event, or succeeded because the engine's bounds
// made it fit. None hangs with no status.
func TestOversizedRunsEndVisibly(t *testing.T) {
	ns := namespace(t, "oversized")
	startController(t, ns)
	const big = `strings.Repeat("x", 100*1024)`
	for _, c := range []struct {
		name, template, outputs string
	}{
		{"logs", "import (\n\t\"strings\"\n\t\"vela/op\"\n)\n\nlog: op.#Log & {data: " + big + "}\n", ""},
		{"outputs", "import \"strings\"\n\nbig: " + big + "\n", `outputs: [{name: "big-\(i)", valueFrom: big}]`},
		{"messages", "import (\n\t\"strings\"\n\t\"vela/op\"\n)\n\nm: op.#Message & {message: " + big + "}\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			stepDef(t, ns, "big-"+c.name, c.template)
			var steps strings.Builder
			for i := 0; i < 50; i++ {
				out := strings.ReplaceAll(c.outputs, `\(i)`, fmt.Sprint(i))
				fmt.Fprintf(&steps, "    - {name: s%02d, type: big-%s, %s}\n", i, c.name, out)
			}
			applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: big-%s, namespace: %s}
spec:
  workflowSpec:
    steps:
%s`, c.name, ns, steps.String()))
			run := waitRun(t, ns, "big-"+c.name, 90*time.Second, finishedRun)
			switch run.Status.Phase {
			case v1alpha1.WorkflowRunSucceeded:
				t.Logf("succeeded: the engine's bounds made it fit")
			case v1alpha1.WorkflowRunFailed:
				cond := meta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionFailed)
				if cond == nil || cond.Reason == "" || run.Status.Message == "" {
					t.Fatalf("failed without a reason and message: %+v", run.Status)
				}
				reason := "StepFailed"
				if cond.Reason == controller.ReasonWriteRefused {
					reason = controller.ReasonWriteRefused
				}
				msg := waitEvent(t, ns, run.Name, reason, 10*time.Second)
				t.Logf("failed (%s): %.200s", cond.Reason, msg)
			default:
				t.Fatalf("finished in phase %s", run.Status.Phase)
			}
		})
	}
}
