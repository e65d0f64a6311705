package appop

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// Other runs are listed and created as the step's identity: a
// ServiceAccount without rights on WorkflowRuns is denied for good, and
// passes once a Role grants them. Its own run's configuration the step
// reads regardless.
func TestOtherRunsAreTheStepIdentitys(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	finish(t, launch(t, ns, "v2", "DEPLOY", grayRelease(t)), v1alpha1.WorkflowRunSucceeded, time.Now())
	own := launch(t, ns, "v3", "DEPLOY", grayRelease(t))

	user := "system:serviceaccount:" + ns + ":runner"
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	runner, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	f := New(env.Client, kube.LocalAs(func(context.Context, op.Step) (client.Client, error) { return runner, nil }))
	relaunch := &relaunchParams{Name: "v3-rollback-1", From: "v2", Category: "ROLLBACK"}

	if _, err := call(f, "components", own, &componentsParams{Context: map[string]any{"clusterId": "x"}}); err != nil {
		t.Errorf("components of the step's own run: %v", err)
	}
	for do, params := range map[string]any{"latest-run": &latestRunParams{Category: "DEPLOY", Phase: "succeeded"}, "relaunch": relaunch} {
		_, err := call(f, do, own, params)
		if err == nil || !strings.Contains(err.Error(), "forbidden") || !op.IsPermanent(err) {
			t.Errorf("%s as %s without rights: %v, want a permanent forbidden error", do, user, err)
		}
	}

	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "runs"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "create"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create"}},
		},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "runs"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "runs"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "runner", Namespace: ns}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The API server's authorizer learns of the binding from a watch.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := call(f, "latest-run", own, &latestRunParams{Category: "DEPLOY", Phase: "succeeded"}); err == nil || !strings.Contains(err.Error(), "forbidden") {
			break
		}
	}
	if got := mustCall(t, f, "latest-run", own, &latestRunParams{Category: "DEPLOY", Phase: "succeeded"}); got["name"] != "v2" {
		t.Errorf("latest-run with rights: %v, want v2", got)
	}
	if got := mustCall(t, f, "relaunch", own, relaunch); got["created"] != true {
		t.Errorf("relaunch with rights: %v, want created", got)
	}
}
