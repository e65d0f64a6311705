package tenancy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// chartControllerRules are the rights the chart gives the controller that
// matter here (charts/stepflow/templates/rbac.yaml): its journals'
// ConfigMaps, impersonating ServiceAccounts, creating access reviews.
// Nothing on Secrets or Deployments.
var chartControllerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create", "get", "list", "watch", "patch", "update"}},
	{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
}

// A controller with only the chart's rights serves its runs: a run's
// ServiceAccount reads and writes what it may, reads of a kind the
// controller may not watch go to the API server as the ServiceAccount
// (not to a cache that could never sync them), and what it may not do
// is denied.
func TestControllerWithTheChartsRights(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := newWorld(t, "chart")
	cfg, err := env.User("stepflow-controller-" + w.a)
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "controller-" + w.a}, Rules: chartControllerRules}
	mustCreate(t, role)
	mustCreate(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "stepflow-controller-" + w.a}}})
	// tenant-a's runner may also read and write Deployments at home.
	grant(t, w.a, "deployments", tenancy.DefaultServiceAccount, w.a, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "create", "patch"}})

	cfg = w.count.wrap(cfg)
	shared, err := cache.New(cfg, cache.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = shared.Start(ctx) }()
	uncached, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	f, err := tenancy.New(tenancy.Options{Config: cfg, Reader: shared, Client: uncached})
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.For(tenancy.Identity{Namespace: w.a})
	if err != nil {
		t.Fatal(err)
	}
	sa := "serviceaccount " + w.a + "/stepflow-runner"

	if err := apply(ctx, a, configMap(w.a, "home")); err != nil {
		t.Fatalf("apply at home: %v", err)
	}
	if err := pollGet(ctx, a, client.ObjectKey{Namespace: w.a, Name: "home"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("read at home: %v", err)
	}
	if err := apply(ctx, a, deployment(w.a, "web")); err != nil {
		t.Fatalf("apply a Deployment at home: %v", err)
	}
	w.count.reset()
	var got appsv1.Deployment
	// A cache that may not list Deployments would wait for ever.
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if err := a.Get(rctx, client.ObjectKey{Namespace: w.a, Name: "web"}, &got); err != nil {
		t.Fatalf("read a Deployment at home: %v", err)
	}
	if n := w.count.matching("GET /apis/apps/v1/namespaces/" + w.a + "/deployments/web"); n != 1 {
		t.Errorf("the Deployment was read with %d direct GETs, want 1: %v", n, w.count.paths)
	}

	err = a.Get(ctx, client.ObjectKey{Namespace: w.platform, Name: "db"}, &corev1.Secret{})
	wantDenied(t, err, sa+` may not get secrets "db" in namespace "`+w.platform+`"`)
	err = apply(ctx, a, deployment("kube-system", "pwn"))
	wantDenied(t, err, sa+` may not patch deployments.apps "pwn" in namespace "kube-system"`)
	err = apply(ctx, a, configMap(w.b, "loot"))
	wantDenied(t, err, sa+` may not patch configmaps "loot" in namespace "`+w.b+`"`)
}

// A controller installed without the right to impersonate fails ops with
// a message saying so, and not for good: an operator can grant it.
func TestControllerWithoutImpersonation(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "noimp")
	user := "stepflow-controller-" + w.a
	cfg, err := env.User(user)
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "controller-" + w.a}, Rules: chartControllerRules[2:]}
	mustCreate(t, role)
	mustCreate(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}})
	uncached, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	f, err := tenancy.New(tenancy.Options{Config: cfg, Reader: uncached, Client: uncached})
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.For(tenancy.Identity{Namespace: w.a})
	if err != nil {
		t.Fatal(err)
	}
	err = apply(ctx, a, configMap(w.a, "home"))
	var d *tenancy.Denied
	if err == nil || errors.As(err, &d) || op.IsPermanent(err) || !strings.Contains(err.Error(), "the controller may not act as serviceaccount "+w.a+"/stepflow-runner") {
		t.Errorf("want a retryable error naming the controller's missing right, got %v", err)
	}
}
