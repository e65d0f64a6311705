package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/clusters"
)

// Setup resolves `cluster: NAME` through the cluster Secrets of the system
// namespace: the test API server joined to itself as cluster "self" (a
// second control plane is pkg/clusters' test) is reached by name, as the
// run's ServiceAccount, and an unknown name fails the step for good.
func TestNamedClusterFromSecret(t *testing.T) {
	w := newTenants(t, "named-cluster", false)
	ctx := context.Background()
	if len(env.Config.KeyData) == 0 {
		t.Fatal("the test API server's admin config has no client key to join with")
	}
	s, err := clusters.Secret(w.sys, "self", clusters.Credentials{Type: clusters.X509Certificate,
		Endpoint: env.Config.Host, CA: env.Config.CAData, Cert: env.Config.CertData, Key: env.Config.KeyData})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	// tenant-a's runner may use the clusters "self" and "nowhere" (which has no Secret).
	if err := env.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: w.sys, Name: "use-clusters"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"},
			ResourceNames: []string{"self", "nowhere"}}}}); err != nil {
		t.Fatal(err)
	}
	bindTo(t, w.sys, "use-clusters", w.a, "stepflow-runner")

	cm := func(name, cluster string) map[string]any {
		return map[string]any{"cluster": cluster, "value": map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}, "data": map[string]any{"k": "v"}}}
	}
	wantSucceeded(t, runStep(t, w.a, "to-self", "", "apply-object", cm("via-self", "self")))
	var got corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: w.a, Name: "via-self"}, &got); err != nil {
		t.Fatalf("the ConfigMap applied through cluster self: %v", err)
	}
	// Written as the run's ServiceAccount, not as the Secret's admin.
	if len(got.ManagedFields) == 0 || got.ManagedFields[0].Manager != "stepflow" {
		t.Errorf("managed fields %v", got.ManagedFields)
	}
	// Where the runner may not write, the cluster (not the Secret's admin
	// credentials) denies the ServiceAccount's user, for good.
	run := runStep(t, w.a, "to-kube-system", "", "apply-object", map[string]any{"cluster": "self", "value": map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x", "namespace": "kube-system"}}})
	wantDenied(t, run, `cluster "self" denies system:serviceaccount:`+w.a+`:stepflow-runner`)

	run = runStep(t, w.a, "to-nowhere", "", "apply-object", cm("via-nowhere", "nowhere"))
	wantDenied(t, run, `unknown cluster "nowhere"`)

	// The client key is in no status.
	key := strings.TrimSpace(string(env.Config.KeyData))
	for _, name := range []string{"to-self", "to-kube-system", "to-nowhere"} {
		r := waitRun(t, w.a, name, time.Second, func(*v1alpha1.WorkflowRun) bool { return true })
		b, _ := yaml.Marshal(r.Status)
		if strings.Contains(string(b), key[len(key)/2:len(key)/2+40]) {
			t.Errorf("run %s: the client key is in the status", name)
		}
	}
}
