package runop_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	s, err := api.NewScheme()
	if err != nil {
		panic(err)
	}
	var stop func()
	env, stop = testenv.StartMain(testenv.WithCRDs(), testenv.WithScheme(s))
	code := m.Run()
	stop()
	os.Exit(code)
}

var t0 = time.Date(2026, 12, 6, 15, 4, 5, 0, time.UTC)

// newRun creates a suspended run of one suspend step in a new namespace.
func newRun(t *testing.T) (*v1alpha1.WorkflowRun, runop.Runs) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "runop-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "r"},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "s", Type: "suspend"}}}}}}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	return run, runop.Runs{Reader: env.Client, Client: env.Client}
}

func get(t *testing.T, run *v1alpha1.WorkflowRun) *v1alpha1.WorkflowRun {
	t.Helper()
	var got v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: run.Namespace, Name: run.Name}, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func resume(ch *runop.Change) error { return engine.Resume(ch.Status, "") }

func TestUpdateRecordsWhoOperated(t *testing.T) {
	run, runs := newRun(t)
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	done, err := runs.Update(context.Background(), key, runop.Options{Verb: "resume", Actor: "alice", LockVersion: run.ResourceVersion, Now: func() time.Time { return t0 }}, resume)
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, run)
	if got.Status.Suspend || done.ResourceVersion != got.ResourceVersion {
		t.Errorf("after resume: suspend %v, returned version %s, stored %s", got.Status.Suspend, done.ResourceVersion, got.ResourceVersion)
	}
	if got.Annotations[runop.AnnotationOperatedBy] != "alice" || got.Annotations[runop.AnnotationOperation] != "resume at 2026-12-06T15:04:05Z" {
		t.Errorf("audit annotations %v", got.Annotations)
	}
}

// A stale LockVersion changes nothing and says which versions differ; so
// does a write that finds the run changed since it was read, when the
// caller named a version. Without one, Update reads again and applies the
// operation to the new run.
func TestUpdateStaleVersion(t *testing.T) {
	ctx := context.Background()
	run, runs := newRun(t)
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	calls := 0
	_, err := runs.Update(ctx, key, runop.Options{Verb: "resume", Actor: "alice", LockVersion: "1"}, func(ch *runop.Change) error {
		calls++
		return resume(ch)
	})
	var stale *runop.StaleError
	if !errors.As(err, &stale) || stale.Want != "1" || stale.Have != run.ResourceVersion || calls != 0 {
		t.Fatalf("stale lockVersion: %v (%d calls), want a StaleError 1 vs %s before any call", err, calls, run.ResourceVersion)
	}

	// Someone writes between the read and the write.
	meddles := 0
	meddle := func(ch *runop.Change) error {
		calls++
		if calls == 1 {
			meddles++
			other := ch.Run.DeepCopy()
			other.Status.Message = fmt.Sprintf("the controller was here (%d)", meddles)
			if err := env.Client.Status().Update(ctx, other); err != nil {
				return err
			}
		}
		return resume(ch)
	}
	calls = 0
	_, err = runs.Update(ctx, key, runop.Options{Verb: "resume", LockVersion: run.ResourceVersion}, meddle)
	if !errors.As(err, &stale) || calls != 1 {
		t.Fatalf("changed under a named version: %v (%d calls), want a StaleError after one call", err, calls)
	}
	if got := get(t, run); !got.Status.Suspend || got.Annotations[runop.AnnotationOperatedBy] != "" {
		t.Fatalf("run changed by a stale resume: suspend %v, annotations %v", got.Status.Suspend, got.Annotations)
	}
	calls = 0
	if _, err := runs.Update(ctx, key, runop.Options{Verb: "resume"}, meddle); err != nil || calls != 2 {
		t.Fatalf("changed under an unnamed version: %v (%d calls), want done at the second call", err, calls)
	}
	if got := get(t, run); got.Status.Suspend || got.Status.Message != "the controller was here (2)" {
		t.Errorf("after the retried resume: suspend %v, message %q (the other write must stay)", got.Status.Suspend, got.Status.Message)
	}
}

// A refusal by the engine is a RefusedError with the run's phase, and
// nothing is written.
func TestUpdateRefused(t *testing.T) {
	run, runs := newRun(t)
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	_, err := runs.Update(context.Background(), key, runop.Options{Verb: "retry", Actor: "alice"}, func(ch *runop.Change) error {
		return engine.Retry(ch.Status)
	})
	var refused *runop.RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, engine.ErrNotFinished) || refused.Phase != v1alpha1.WorkflowRunSuspending || !runop.IsRefused(err) {
		t.Fatalf("retry of a suspended run: %v, want refused with ErrNotFinished in phase suspending", err)
	}
	if got := get(t, run); got.ResourceVersion != run.ResourceVersion {
		t.Errorf("a refused operation wrote the run (%s -> %s)", run.ResourceVersion, got.ResourceVersion)
	}
}

// A context variable goes to the journal's ConfigMap first; the run then
// names that journal's version (kubestore.VersionAnnotation) and its
// context backend.
func TestUpdateSavesJournalBeforeStatus(t *testing.T) {
	run, runs := newRun(t)
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	_, err := runs.Update(context.Background(), key, runop.Options{Verb: "set context", Actor: "alice"}, func(ch *runop.Change) error {
		j, err := ch.Journal()
		if err != nil {
			return err
		}
		return engine.SetContext(ch.Status, j, "continueRollout", true)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, run)
	if got.Status.ContextBackend == nil || got.Annotations[kubestore.VersionAnnotation] == "" {
		t.Fatalf("run after context set: backend %v, annotations %v", got.Status.ContextBackend, got.Annotations)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: run.Namespace, Name: got.Status.ContextBackend.Name}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion != got.Annotations[kubestore.VersionAnnotation] {
		t.Errorf("run names journal version %s, ConfigMap is at %s", got.Annotations[kubestore.VersionAnnotation], cm.ResourceVersion)
	}
}

// A Checker answers what Update would, and writes nothing: not the
// status, not the journal an operation changes.
func TestCheckerWritesNothing(t *testing.T) {
	ctx := context.Background()
	run, runs := newRun(t)
	check := runs.Checker(run)
	if err := check.Check(ctx, resume); err != nil {
		t.Errorf("resume of a suspended run: %v", err)
	}
	err := check.Check(ctx, func(ch *runop.Change) error { return engine.Retry(ch.Status) })
	var refused *runop.RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, engine.ErrNotFinished) {
		t.Errorf("retry of an unfinished run: %v, want a RefusedError of ErrNotFinished", err)
	}
	setVar := func(ch *runop.Change) error {
		j, err := ch.Journal()
		if err != nil {
			return err
		}
		return engine.SetContext(ch.Status, j, "flag", "on")
	}
	for range 2 {
		if err := check.Check(ctx, setVar); err != nil {
			t.Errorf("set context: %v", err)
		}
	}
	got := get(t, run)
	if got.ResourceVersion != run.ResourceVersion || !got.Status.Suspend {
		t.Errorf("checks changed the run: version %s -> %s, suspend %v", run.ResourceVersion, got.ResourceVersion, got.Status.Suspend)
	}
	var cm corev1.ConfigMap
	err = env.Client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: kubestore.ContextConfigMapName(run.Name)}, &cm)
	if err == nil {
		t.Errorf("a check wrote the journal: %v", cm.Data)
	}
}
