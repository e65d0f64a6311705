package config_test

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// The ops act as the step's ServiceAccount: in the namespace where it may
// write Secrets a config is made, in another the request is refused, for
// good, naming the config, and nothing is written there.
func TestActsAsTheStepsIdentity(t *testing.T) {
	ctx := context.Background()
	mine, theirs := newNamespace(t), newNamespace(t)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: mine, Name: "configs"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "update", "patch", "delete"},
	}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: mine, Name: "configs"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configs"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: mine, Name: "runner"}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	id := tenancy.Identity{Namespace: mine, Name: "runner"}
	testenv.WaitAllowed(t, env.Client, id.User(), authorizationv1.ResourceAttributes{Namespace: mine, Verb: "patch", Resource: "secrets"})

	factory, err := tenancy.New(tenancy.Options{Config: env.Config, Reader: env.Client, Client: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	f := config.New(kube.LocalAs(func(_ context.Context, step op.Step) (client.Client, error) {
		return factory.For(tenancy.Of(step, "runner"))
	}))

	mustRun(t, f, "create", mine, `{"name":"db","namespace":"`+mine+`","config":{"url":"x"}}`)
	if n := len(configSecrets(t, mine)); n != 1 {
		t.Errorf("%d config Secrets in the step's namespace, want 1", n)
	}

	for _, do := range []string{"create", "read", "delete"} {
		_, err := run(f, do, mine, params(t, f, do, `{"name":"db","namespace":"`+theirs+`","config":{"url":"x"}}`))
		if err == nil || !op.IsPermanent(err) {
			t.Fatalf("%s in another namespace: want a permanent refusal, got %v", do, err)
		}
		for _, want := range []string{`config "db" in namespace "` + theirs + `"`, "serviceaccount " + mine + "/runner"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", do, err, want)
			}
		}
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: theirs, Name: "db"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Secret was written where the identity may not: %v", err)
	}
}
