package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

const readAndWait = `import (
	"vela/kube"
	"vela/builtin"
)

read: kube.#Read & {$params: value: parameter.value}
wait: builtin.#ConditionalWait & {
	$params: continue: read.$returns.value.status.ready == true
}
parameter: value: {...}
`

const readOnce = `import "vela/kube"

read: kube.#Read & {$params: value: parameter.value}
parameter: value: {...}
`

// grantRunner lets the runner of ns do what runnerRules allow and also
// rules, and waits until the authorizer lets it do verb on resource in
// group there.
func grantRunner(t *testing.T, ns, verb, group, resource string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	all := append(append([]rbacv1.PolicyRule{}, runnerRules...), rules...)
	if err := tenancy.SetUpRunner(context.Background(), env.Client, ns, tenancy.DefaultServiceAccount, all); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + tenancy.DefaultServiceAccount
	deadline := time.Now().Add(20 * time.Second)
	for {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource},
		}}
		if err := env.Client.Create(context.Background(), review); err == nil && review.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner of %s was not allowed to %s %s within 20s", ns, verb, resource)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runReading starts run name in ns, whose one step "gadget" of type def
// reads an object of apiVersion and kind.
func runReading(t *testing.T, ns, name, def, apiVersion, kind string) {
	t.Helper()
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: %s, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: gadget
      type: %s
      properties:
        value:
          apiVersion: %s
          kind: %s
          metadata: {name: g}
`, name, ns, def, apiVersion, kind))
}

// A step that reads and waits on a kind the API server does not serve
// fails at once, saying which kind and asking whether its CRD is
// installed, and leaves no informer behind for it.
func TestWaitOnKindNotInstalled(t *testing.T) {
	for i, tc := range []struct {
		name, apiVersion, kind, want string
	}{
		{"unknown group", "nothere.example.com/v1", "Gadget", `no kind "Gadget" in group "nothere.example.com"`},
		{"unknown kind in a served group", "apps/v1", "Gadget", `no kind "Gadget" in group "apps"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t, fmt.Sprintf("nokind-%d", i))
			// Definitions first: the controller's cache then has them when
			// it starts, so the run cannot race them.
			stepDef(t, ns, "read-and-wait", readAndWait)
			c := startController(t, ns)
			runReading(t, ns, "run", "read-and-wait", tc.apiVersion, tc.kind)
			run := waitRun(t, ns, "run", 20*time.Second, finishedRun)
			checkNotServed(t, run, tc.want)
			for _, s := range c.OpsReader.Scopes() {
				if s.GVK.Kind == tc.kind {
					t.Errorf("an informer of %s is left running", s)
				}
			}
		})
	}
}

func checkNotServed(t *testing.T, run *v1alpha1.WorkflowRun, want string) {
	t.Helper()
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Errorf("run is %s, want failed", run.Status.Phase)
	}
	msg := run.Status.Steps[0].Message
	if !strings.Contains(msg, want) || !strings.Contains(msg, "is its CRD installed?") || !strings.Contains(msg, `step "gadget"`) {
		t.Errorf("step message %q; want it to name the step, contain %q and ask whether the CRD is installed", msg, want)
	}
}

const gizmoCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.stale.stepflow.dev}
spec:
  group: stale.stepflow.dev
  scope: Namespaced
  names: {kind: Gizmo, listKind: GizmoList, plural: gizmos, singular: gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// A kind whose CRD is removed after the controller learnt it (its
// RESTMapper keeps the mapping): the informer already watching it stops
// instead of retrying its LIST forever, and a step that then reads and
// waits on it fails saying the kind is not served, instead of waiting for
// an object that can never appear.
func TestWaitOnKindWhoseCRDWasRemoved(t *testing.T) {
	before, after := namespace(t, "stalekind-before"), namespace(t, "stalekind-after")
	gizmos := rbacv1.PolicyRule{APIGroups: []string{"stale.stepflow.dev"}, Resources: []string{"gizmos"}, Verbs: []string{"get", "list", "watch"}}
	ctx := context.Background()
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(gizmoCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "stale.stepflow.dev", Version: "v1", Resource: "gizmos"}
	served := func() bool {
		_, err := dyn.Resource(gvr).Namespace(before).List(ctx, metav1.ListOptions{})
		return err == nil
	}
	eventually(t, 20*time.Second, "the CRD is served", served)
	for _, ns := range []string{before, after} {
		grantRunner(t, ns, "get", "stale.stepflow.dev", "gizmos", gizmos)
	}

	stepDef(t, before, "read-once", readOnce)
	stepDef(t, after, "read-and-wait", readAndWait)
	c := startController(t, before)
	runReading(t, before, "learn", "read-once", "stale.stepflow.dev/v1", "Gizmo")
	if run := waitRun(t, before, "learn", 20*time.Second, finishedRun); run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("reading a Gizmo while its CRD is installed: %s %q", run.Status.Phase, run.Status.Steps[0].Message)
	}
	gizmoScopes := func() []string {
		var out []string
		for _, s := range c.OpsReader.Scopes() {
			if s.GVK.Kind == "Gizmo" {
				out = append(out, s.String())
			}
		}
		return out
	}
	if len(gizmoScopes()) == 0 {
		t.Fatalf("the read started no informer of Gizmos; scopes: %v", c.OpsReader.Scopes())
	}

	if err := env.Client.Delete(ctx, crd); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the CRD is gone and no longer served", func() bool {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(crd), crd.DeepCopy())
		return apierrors.IsNotFound(err) && !served()
	})
	eventually(t, 20*time.Second, "the informer of Gizmos in "+before+" stops", func() bool { return len(gizmoScopes()) == 0 })

	runReading(t, after, "run", "read-and-wait", "stale.stepflow.dev/v1", "Gizmo")
	run := waitRun(t, after, "run", 20*time.Second, finishedRun)
	checkNotServed(t, run, `no kind "Gizmo" in group "stale.stepflow.dev"`)
	if s := gizmoScopes(); len(s) != 0 {
		t.Errorf("informers of Gizmos left running: %v", s)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
