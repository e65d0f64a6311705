package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// `stepflow step run` reaches a cluster joined with `stepflow cluster join`
// by name: here the test API server joined to itself.
func TestStepRunOnJoinedCluster(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sys := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: definition.DefaultSystemNamespace}}
	if err := env.Client.Create(context.Background(), sys); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if code, _, errs := stepflow(t, "cluster", "join", "self-cli", "--kubeconfig", kc, "--hub-kubeconfig", kc); code != 0 {
		t.Fatalf("cluster join: exit %d: %s", code, errs)
	}
	t.Cleanup(func() { stepflow(t, "--kubeconfig", kc, "cluster", "remove", "self-cli") })

	res := stepRun(t, "--kubeconfig", kc, "-n", "default", "-f", "../../definitions/apply-object.cue",
		"--properties", `{"cluster": "self-cli", "value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "via-self-cli"}}}`)
	if res.Outcome != "succeeded" {
		t.Fatalf("cluster self-cli: outcome %s: %s", res.Outcome, res.Message)
	}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: "via-self-cli"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the ConfigMap applied through cluster self-cli: %v", err)
	}
	res = stepRun(t, "--kubeconfig", kc, "-n", "default", "-f", "../../definitions/apply-object.cue",
		"--properties", `{"cluster": "nowhere", "value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}`)
	if res.Outcome != "failed" || !strings.Contains(res.Message, `unknown cluster "nowhere"`) {
		t.Errorf("cluster nowhere: outcome %s: %s", res.Outcome, res.Message)
	}
}
