package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/clusters"
)

const waitOnCluster = `import (
	"vela/kube"
	"vela/builtin"
)

read: kube.#Read & {$params: {cluster: parameter.cluster, value: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: parameter.name, namespace: context.namespace}}}}
wait: builtin.#ConditionalWait & {
	$params: {
		continue: read.$returns.value.data.ready == "yes"
		message:  "waiting for \(parameter.name) on \(parameter.cluster)"
	}
}
parameter: {cluster: string, name: string}
`

// A step waiting on an object of a named cluster is woken by that
// cluster's watch event, as a local one is: the test API server joined to
// itself as cluster "self" (pkg/clusters' tests use a second one).
func TestRemoteWaitIsWokenByWatch(t *testing.T) {
	ns := namespace(t, "remote-woken")
	sys := namespace(t, "sys-remote-woken")
	startController(t, sys)
	ctx := context.Background()
	s, err := clusters.Secret(sys, "self", clusters.Credentials{Type: clusters.X509Certificate,
		Endpoint: env.Config.Host, CA: env.Config.CAData, Cert: env.Config.CertData, Key: env.Config.KeyData})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "use-self"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"},
			ResourceNames: []string{"self"}}}}); err != nil {
		t.Fatal(err)
	}
	bindTo(t, sys, "use-self", ns, "stepflow-runner")
	gate := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gate"}, Data: map[string]string{"ready": "no"}}
	if err := env.Client.Create(ctx, gate); err != nil {
		t.Fatal(err)
	}
	stepDef(t, sys, "wait-on-cluster", waitOnCluster)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: remote, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: gate
      type: wait-on-cluster
      properties: {cluster: self, name: gate}
`, ns))
	waitRun(t, ns, "remote", 20*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return len(r.Status.Steps) == 1 && r.Status.Steps[0].Reason == "Wait"
	})
	// Let the poll interval grow (a quarter of the time waited).
	time.Sleep(12 * time.Second)
	gate.Data["ready"] = "yes"
	if err := env.Client.Update(ctx, gate); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	run := waitRun(t, ns, "remote", 10*time.Second, finishedRun)
	if took := time.Since(ready); run.Status.Phase != v1alpha1.WorkflowRunSucceeded || took > time.Second {
		t.Fatalf("phase %s %s after the remote object became ready; want succeeded within 1s", run.Status.Phase, took)
	}
}
