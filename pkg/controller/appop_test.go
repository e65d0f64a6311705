package controller_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// appConfig is an application whose workflow is one step of type step.
func appConfig(step string) []byte {
	return []byte(`apiVersion: core.oam.dev/v1alpha2
kind: ApplicationConfiguration
metadata:
  name: shop
  annotations: {appId: shop}
spec:
  parameterValues:
  - {name: image, value: "shop:1"}
  components:
  - revisionName: "K8S_MICROSERVICE|web|_"
    parameterValues:
    - {name: image, value: "{{ Global.image }}", toFieldPaths: [spec.image]}
  workflow:
    steps:
    - {name: ` + step + `, type: ` + step + `}
`)
}

// A rollback through the controller, its ops run by the sandbox's
// catalog and the controller's wiring: the step reads its application's
// components, finds the last succeeded DEPLOY and relaunches it as the
// run's ServiceAccount, once.
func TestAppOpsRollBack(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "app-rollback")
	rules := append(append([]rbacv1.PolicyRule(nil), runnerRules...), rbacv1.PolicyRule{
		APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "create"},
	})
	if err := tenancy.SetUpRunner(ctx, env.Client, ns, tenancy.DefaultServiceAccount, rules); err != nil {
		t.Fatal(err)
	}
	sys := namespace(t, "sys-app-rollback")
	startController(t, sys)
	stepDef(t, sys, "deploy-it", `parameter: {}`)
	stepDef(t, sys, "roll-back", `import (
	"vela/app"
	"vela/kube"
)

let Ctx = context
comps: app.#Components & {$params: context: Ctx}
seen: kube.#Apply & {$params: value: {
	apiVersion: "v1"
	kind:       "ConfigMap"
	metadata: name: "seen"
	data: image: comps.$returns.components[0].properties.image
}}
target: app.#LatestRun
launch: app.#Relaunch & {$params: {
	name:     "\(Ctx.name)-rollback"
	from:     target.$returns.name
	category: "ROLLBACK"
	context: quiet: true
}}
`)

	v2, err := app.Run(ctx, env.Client, app.Request{Configuration: appConfig("deploy-it"), Category: "DEPLOY", Namespace: ns, Name: "v2", InstanceCounterNamespace: sys})
	if err != nil {
		t.Fatal(err)
	}
	if run := waitRun(t, ns, "v2", 30*time.Second, finishedRun); run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("v2 %s: %s", run.Status.Phase, run.Status.Message)
	}
	if _, err := app.Run(ctx, env.Client, app.Request{Configuration: appConfig("roll-back"), Category: "DEPLOY", Namespace: ns, Name: "v3",
		Context: map[string]any{"image": "shop:3"}}); err != nil {
		t.Fatal(err)
	}
	if run := waitRun(t, ns, "v3", 30*time.Second, finishedRun); run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("v3 %s: %s", run.Status.Phase, run.Status.Message)
	}

	var seen corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "seen"}, &seen); err != nil {
		t.Fatal(err)
	}
	if seen.Data["image"] != "shop:3" {
		t.Errorf("the component's image property is %q, want the run context's shop:3", seen.Data["image"])
	}
	rb := waitRun(t, ns, "v3-rollback", 30*time.Second, finishedRun)
	if rb.Status.Phase != v1alpha1.WorkflowRunSucceeded || rb.Labels[app.LabelCategory] != "ROLLBACK" || rb.Annotations[app.AnnotationParentRun] != "v3" {
		t.Errorf("rollback run: %s %q, labels %v, annotations %v", rb.Status.Phase, rb.Status.Message, rb.Labels, rb.Annotations)
	}
	if v2ID, _ := app.InstanceID(v2.Run); rb.Labels[app.LabelInstanceID] != strconv.FormatInt(v2ID+1, 10) {
		t.Errorf("rollback run's instance id is %q, want the counter's next after v2's %d", rb.Labels[app.LabelInstanceID], v2ID)
	}
	if len(rb.Spec.WorkflowSpec.Steps) != 1 || rb.Spec.WorkflowSpec.Steps[0].Type != "deploy-it" {
		t.Errorf("rollback run steps %+v, want v2's deploy-it", rb.Spec.WorkflowSpec.Steps)
	}
	var rbCtx map[string]any
	if err := json.Unmarshal(rb.Spec.Context.Raw, &rbCtx); err != nil || rbCtx["quiet"] != true {
		t.Errorf("rollback run context %s (%v), want quiet: true", rb.Spec.Context.Raw, err)
	}
	var rollbacks v1alpha1.WorkflowRunList
	if err := env.Client.List(ctx, &rollbacks, client.InNamespace(ns), client.MatchingLabels{app.LabelCategory: "ROLLBACK"}); err != nil {
		t.Fatal(err)
	}
	if len(rollbacks.Items) != 1 {
		t.Errorf("%d ROLLBACK runs, want 1", len(rollbacks.Items))
	}
}
