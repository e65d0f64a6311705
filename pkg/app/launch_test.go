package app

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
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

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func TestRunSmallConfigurationIsInTheRun(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	src := grayRelease(t)
	l, err := Run(ctx, env.Client, Request{Configuration: src, AppID: "testapp", Category: "DEPLOY", Namespace: ns, Creator: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(l.Run), &run); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.Name, "testapp-deploy-") || run.Labels[LabelScope] != "abm-daily" || run.Annotations[AnnotationCreator] != "alice" {
		t.Errorf("run %s: labels %v, annotations creator %q", run.Name, run.Labels, run.Annotations[AnnotationCreator])
	}
	if n := len(run.Spec.WorkflowSpec.Steps); n != 5 {
		t.Errorf("run has %d steps, want 5", n)
	}
	var cms corev1.ConfigMapList
	if err := env.Client.List(ctx, &cms, client.InNamespace(ns), client.MatchingLabels{LabelAppID: "testapp"}); err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != 0 {
		t.Errorf("a small configuration made ConfigMap %s", cms.Items[0].Name)
	}
	stored, err := Configuration(ctx, env.Client, &run)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Raw) != string(src) || stored.Config.Metadata.Name != "deploy-workflow" {
		t.Errorf("stored configuration differs from the launched one")
	}

	// An edited annotation is refused: the run replays only what it ran.
	run.Annotations[AnnotationConfiguration] = strings.Replace(string(src), "nginx", "evil", 1)
	if err := env.Client.Update(ctx, &run); err != nil {
		t.Fatal(err)
	}
	if _, err := Configuration(ctx, env.Client, &run); err == nil || !strings.Contains(err.Error(), "changed after the launch") {
		t.Errorf("edited configuration: error %v, want one saying it changed after the launch", err)
	}
}

func TestRunLargeConfigurationIsInAnImmutableOwnedConfigMap(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	src := bigDoc(200 << 10)
	l, err := Run(ctx, env.Client, Request{Configuration: src, AppID: "big app/1", Category: "DEPLOY", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(l.Run), &run); err != nil {
		t.Fatal(err)
	}
	if _, inline := run.Annotations[AnnotationConfiguration]; inline {
		t.Errorf("a %d-byte configuration is in the run", len(src))
	}
	if run.Annotations[AnnotationRawAppID] != "big app/1" || run.Labels[LabelAppID] != LabelValue("big app/1") {
		t.Errorf("app id label %q, annotation %q", run.Labels[LabelAppID], run.Annotations[AnnotationRawAppID])
	}
	name := run.Annotations[AnnotationConfigMap]
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		t.Fatalf("configmap %q named by the run: %v", name, err)
	}
	if cm.Immutable == nil || !*cm.Immutable {
		t.Errorf("configmap %s is not immutable", name)
	}
	if owner := metav1.GetControllerOf(&cm); owner == nil || owner.UID != run.UID || owner.Kind != "WorkflowRun" {
		t.Errorf("configmap %s is owned by %+v, want run %s (%s)", name, owner, run.Name, run.UID)
	}
	cm.Data[ConfigMapKey] = "changed"
	if err := env.Client.Update(ctx, &cm); !apierrors.IsInvalid(err) {
		t.Errorf("updating the configmap's data: %v, want the API server to refuse it", err)
	}
	stored, err := Configuration(ctx, env.Client, &run)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Raw) != string(src) {
		t.Errorf("stored configuration (%d bytes) differs from the launched one (%d bytes)", len(stored.Raw), len(src))
	}
}

// The largest configuration accepted fits: the API server (and etcd
// behind it) takes its ConfigMap.
func TestRunLargestConfiguration(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	src := bigDoc(MaxConfigurationSize)
	if len(src) != MaxConfigurationSize {
		t.Fatalf("test document is %d bytes, want %d", len(src), MaxConfigurationSize)
	}
	l, err := Run(ctx, env.Client, Request{Configuration: src, AppID: "a", Category: "DEPLOY", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := Configuration(ctx, env.Client, l.Run)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Raw) != len(src) {
		t.Errorf("stored %d bytes, launched %d", len(stored.Raw), len(src))
	}
}

func TestRunDeletesTheRunWhenItsConfigMapCannotBeCreated(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	taken := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r1-configuration"}}
	if err := env.Client.Create(ctx, taken); err != nil {
		t.Fatal(err)
	}
	_, err := Run(ctx, env.Client, Request{Configuration: bigDoc(InlineLimit + 1), AppID: "a", Category: "DEPLOY", Namespace: ns, Name: "r1"})
	if err == nil || !strings.Contains(err.Error(), "creating configmap "+ns+"/r1-configuration for workflowrun r1") ||
		!strings.Contains(err.Error(), "the run was deleted again") {
		t.Fatalf("error %v, want one naming the configmap and saying the run was deleted", err)
	}
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r1"}, &run); !apierrors.IsNotFound(err) {
		t.Errorf("run r1 after a failed launch: %v, want not found", err)
	}
}

// A run written by hand, as kubectl apply would create it, is read like a
// launched one: the configuration annotation is all it needs.
func TestConfigurationOfAHandWrittenRun(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	src := grayRelease(t)
	run := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-hand",
			Labels:      map[string]string{LabelAppID: "testapp", LabelCategory: "DEPLOY", LabelScope: "abm-daily"},
			Annotations: map[string]string{AnnotationConfiguration: string(src)}},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "deploy", Type: "deploy"}}}}},
	}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	stored, err := Configuration(ctx, env.Client, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Config.Spec.Components) != 2 {
		t.Errorf("read %d components, want 2", len(stored.Config.Spec.Components))
	}

	bare := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"}}
	if _, err := Configuration(ctx, env.Client, bare); err == nil || !strings.Contains(err.Error(), "workflowrun "+ns+"/bare has no application configuration") {
		t.Errorf("error %v, want one saying the run has no configuration", err)
	}
	missing := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing",
		Annotations: map[string]string{AnnotationConfigMap: "gone"}}}
	if _, err := Configuration(ctx, env.Client, missing); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "configuration configmap gone") {
		t.Errorf("error %v, want a not-found naming configmap gone", err)
	}
}
