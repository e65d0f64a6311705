package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// TestLaunch drives stepflow launch with the gray-release configuration of
// the SREWorks reference: the run it creates carries the steps, labels,
// creator, context and configuration, and a large configuration goes to an
// immutable ConfigMap the run owns.
func TestLaunch(t *testing.T) {
	c := newCluster(t)
	src, err := os.ReadFile("../../pkg/app/testdata/gray-release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.ok("launch", "-f", file, "--app", "testapp", "--category", "DEPLOY", "--name", "v1", "--run-context", "deployNamespace=abm-daily")
	if out != "workflowrun.core.oam.dev/v1 created\n" {
		t.Errorf("output %q", out)
	}
	run := c.get("v1")
	if run.Labels[app.LabelAppID] != "testapp" || run.Labels[app.LabelCategory] != "DEPLOY" || run.Labels[app.LabelScope] != "abm-daily" {
		t.Errorf("labels %v", run.Labels)
	}
	if got := run.Annotations[app.AnnotationCreator]; got != "stepflow-admin" {
		t.Errorf("creator %q, want the kubeconfig's user stepflow-admin", got)
	}
	if got := string(run.Spec.Context.Raw); got != `{"deployNamespace":"abm-daily"}` {
		t.Errorf("context %s", got)
	}
	if n := len(run.Spec.WorkflowSpec.Steps); n != 5 || run.Spec.WorkflowSpec.Steps[2].Name != "suspend-3" {
		t.Errorf("%d steps, the third named %q", n, run.Spec.WorkflowSpec.Steps[2].Name)
	}
	stored, err := app.Configuration(context.Background(), env.Client, run)
	if err != nil || string(stored.Raw) != string(src) {
		t.Errorf("stored configuration: %v", err)
	}

	// A large one: the same document padded with a YAML comment.
	big := append(append([]byte(nil), src...), []byte("  # "+strings.Repeat("x", app.InlineLimit)+"\n")...)
	if err := os.WriteFile(file, big, 0o600); err != nil {
		t.Fatal(err)
	}
	out = c.ok("launch", "-f", file, "--category", "DEPLOY", "--name", "v2", "--creator", "bob")
	if out != "workflowrun.core.oam.dev/v2 created\nconfigmap/v2-configuration created\n" {
		t.Errorf("output %q", out)
	}
	run = c.get("v2")
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), c.key("v2-configuration"), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Immutable == nil || !*cm.Immutable || len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != run.UID {
		t.Errorf("configmap: immutable %v, owners %v; want immutable, owned by run v2", cm.Immutable, cm.OwnerReferences)
	}
	if run.Annotations[app.AnnotationCreator] != "bob" {
		t.Errorf("creator %q, want bob", run.Annotations[app.AnnotationCreator])
	}

	// Bad input creates nothing and names the culprit.
	bad := strings.Replace(string(src), "K8S_MICROSERVICE|clustermanage-test|_", "K8S_MICROSERVICE|clustermanage-test", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(`spec.components[0]: revisionName "K8S_MICROSERVICE|clustermanage-test": want TYPE|NAME|VERSION`,
		"launch", "-f", file, "--category", "DEPLOY", "--name", "v3")
	var runs v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &runs, client.InNamespace(c.ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 2 {
		t.Errorf("%d runs after a failed launch, want the 2 launched before", len(runs.Items))
	}
}
