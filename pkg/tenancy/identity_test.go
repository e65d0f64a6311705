package tenancy_test

import (
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

func TestDeniedMessage(t *testing.T) {
	a := tenancy.Identity{Namespace: "tenant-a", Name: "stepflow-runner"}
	for _, tc := range []struct {
		d    tenancy.Denied
		want string
	}{
		{tenancy.Denied{Identity: a, Verb: "get", Resource: "secrets", Namespace: "platform", Name: "db"},
			`serviceaccount tenant-a/stepflow-runner may not get secrets "db" in namespace "platform"`},
		{tenancy.Denied{Identity: a, Verb: "create", Resource: "deployments.apps", Namespace: "kube-system", Name: "pwn"},
			`serviceaccount tenant-a/stepflow-runner may not create deployments.apps "pwn" in namespace "kube-system"`},
		{tenancy.Denied{Identity: a, Verb: "list", Resource: "configmaps", Namespace: "tenant-b"},
			`serviceaccount tenant-a/stepflow-runner may not list configmaps in namespace "tenant-b"`},
		{tenancy.Denied{Identity: a, Verb: "list", Resource: "configmaps"},
			`serviceaccount tenant-a/stepflow-runner may not list configmaps cluster-wide`},
		{tenancy.Denied{Identity: a, Verb: "get", Resource: "namespaces", Name: "kube-system"},
			`serviceaccount tenant-a/stepflow-runner may not get namespaces "kube-system"`},
	} {
		if got := tc.d.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestWhoARunIs(t *testing.T) {
	for _, tc := range []struct {
		run, workflow, def, want string
	}{
		{"deployer", "builder", "stepflow-runner", "deployer"},
		{"", "builder", "stepflow-runner", "builder"},
		{"", "", "stepflow-runner", "stepflow-runner"},
	} {
		if got := tenancy.Resolve(tc.run, tc.workflow, tc.def); got != tc.want {
			t.Errorf("Resolve(%q, %q, %q) = %q, want %q", tc.run, tc.workflow, tc.def, got, tc.want)
		}
	}
	id := tenancy.Of(op.Step{Namespace: "tenant-a"}, "stepflow-runner")
	if id.User() != "system:serviceaccount:tenant-a:stepflow-runner" {
		t.Errorf("user %q", id.User())
	}
	if got := tenancy.Of(op.Step{Namespace: "tenant-a", ServiceAccount: "deployer"}, "stepflow-runner"); got.Name != "deployer" || got.Namespace != "tenant-a" {
		t.Errorf("identity %+v", got)
	}
}

// An identity that cannot be a ServiceAccount of the step's namespace is
// refused before any request: no namespace, or a name that would make
// another user ("x:y" would impersonate system:serviceaccount:ns:x:y).
func TestInvalidIdentities(t *testing.T) {
	f, err := tenancy.New(tenancy.Options{Config: env.Config, Reader: env.Client, Client: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []tenancy.Identity{{Name: "runner"}, {Namespace: "a", Name: "x:y"}, {Namespace: "a", Name: "Runner"}} {
		if _, err := f.For(id); !op.IsPermanent(err) {
			t.Errorf("For(%+v): want a permanent error, got %v", id, err)
		}
	}
	if _, err := f.For(tenancy.Identity{Namespace: "a"}); err != nil {
		t.Errorf("the default identity: %v", err)
	}
}
