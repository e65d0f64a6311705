package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// tenants is two tenants' namespaces, a platform namespace holding Secret
// db, the shipped step definitions in a system namespace, and a
// controller.
type tenants struct {
	sys, a, b, platform string
}

const password = "hunter2-platform"

func newTenants(t *testing.T, prefix string, singleTenant bool) tenants {
	t.Helper()
	w := tenants{sys: namespace(t, prefix+"-sys"), a: namespace(t, prefix+"-tenant-a"),
		b: namespace(t, prefix+"-tenant-b"), platform: namespace(t, prefix+"-platform")}
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.platform, Name: "db"},
		Data: map[string][]byte{"password": []byte(password), "ca.crt": []byte("not a cert")}}); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../charts/stepflow/definitions/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped definitions: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var def v1beta1.WorkflowStepDefinition
		if err := yaml.Unmarshal(b, &def); err != nil {
			t.Fatal(err)
		}
		def.Namespace = w.sys
		if err := env.Client.Create(ctx, &def); err != nil {
			t.Fatal(err)
		}
	}
	stepDef(t, w.sys, "get-with-secrets", `import "vela/http"

req: http.#HTTPDo & {$params: {
	url: parameter.url
	if parameter.header != _|_ {
		request: headersFromSecret: [{name: "Authorization", secret: parameter.header, key: "password"}]
	}
	if parameter.tls != _|_ {
		tls_config: parameter.tls
	}
}}
parameter: {
	url: string
	header?: string
	tls?: {secret: string, namespace: string}
}
`)
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{SystemNamespace: w.sys, Metrics: prometheus.NewRegistry(),
		Sandbox: testSandbox(), SingleTenant: singleTenant}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// runStep creates a one-step run in ns and waits for it to finish.
func runStep(t *testing.T, ns, name, sa, typ string, props map[string]any) *v1alpha1.WorkflowRun {
	t.Helper()
	raw, err := yaml.Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	run.Spec.ServiceAccountName = sa
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{
		Name: "step", Type: typ, Properties: &runtime.RawExtension{Raw: js}}}}}
	if err := env.Client.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	return waitRun(t, ns, name, 30*time.Second, finishedRun)
}

// wantDenied checks that the run failed for good at its step, with a
// message that names the denial, and that the Secret's password is
// nowhere in its status.
func wantDenied(t *testing.T, run *v1alpha1.WorkflowRun, denial string) {
	t.Helper()
	if run.Status.Phase != v1alpha1.WorkflowRunFailed || len(run.Status.Steps) != 1 {
		t.Fatalf("run %s: phase %s, %d steps; want failed", run.Name, run.Status.Phase, len(run.Status.Steps))
	}
	s := run.Status.Steps[0]
	if s.Phase != v1alpha1.WorkflowStepPhaseFailed || !strings.Contains(s.Message, denial) {
		t.Errorf("run %s: step %s: %s\nwant a failure saying\n  %s", run.Name, s.Phase, s.Message, denial)
	}
	if s.Attempt > 1 {
		t.Errorf("run %s: a denial was retried (%d attempts)", run.Name, s.Attempt)
	}
	b, _ := yaml.Marshal(run.Status)
	if strings.Contains(string(b), password) {
		t.Errorf("run %s: the password is in the status:\n%s", run.Name, b)
	}
	// Nor in the run's own ConfigMaps (its journal, its context).
	var cms corev1.ConfigMapList
	if err := env.Client.List(context.Background(), &cms, client.InNamespace(run.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		b, _ := yaml.Marshal(cm)
		if strings.Contains(string(b), password) {
			t.Errorf("run %s: the password is in ConfigMap %s", run.Name, cm.Name)
		}
	}
}

func wantSucceeded(t *testing.T, run *v1alpha1.WorkflowRun) {
	t.Helper()
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		b, _ := yaml.Marshal(run.Status)
		t.Errorf("run %s: phase %s, want succeeded:\n%s", run.Name, run.Status.Phase, b)
	}
}

func deploymentProps(ns string) map[string]any {
	return map[string]any{"value": map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "pwn", "namespace": ns},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "pwn"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "pwn"}},
				"spec": map[string]any{"hostPID": true, "containers": []any{map[string]any{
					"name": "c", "image": "busybox", "securityContext": map[string]any{"privileged": true}}}},
			},
		},
	}}
}

// A run of tenant-a with no serviceAccountName acts as tenant-a's
// stepflow-runner: what it may do in its own namespace works, and every
// cross-namespace attempt of issue 8 fails for good with a message naming
// the identity, the verb and the object.
func TestTenantIsConfined(t *testing.T) {
	w := newTenants(t, "confined", false)
	sa := "serviceaccount " + w.a + "/stepflow-runner"

	run := runStep(t, w.a, "steal", "", "read-object", map[string]any{"apiVersion": "v1", "kind": "Secret", "name": "db", "namespace": w.platform})
	wantDenied(t, run, sa+` may not get secrets "db" in namespace "`+w.platform+`"`)

	run = runStep(t, w.a, "export-elsewhere", "", "export2config", map[string]any{"configName": "loot", "namespace": w.b, "data": map[string]any{"k": "v"}})
	wantDenied(t, run, sa+` may not patch configmaps "loot" in namespace "`+w.b+`"`)

	run = runStep(t, w.a, "escalate", "", "apply-object", deploymentProps("kube-system"))
	wantDenied(t, run, sa+` may not patch deployments.apps "pwn" in namespace "kube-system"`)

	// The Secret is read before anything is sent: the host need not exist.
	run = runStep(t, w.a, "tls-elsewhere", "", "get-with-secrets", map[string]any{"url": "https://api.tenant.invalid/", "tls": map[string]any{"secret": "db", "namespace": w.platform}})
	wantDenied(t, run, sa+` may not get secrets "db" in namespace "`+w.platform+`"`)

	// headersFromSecret reads the step's own namespace, as the run's
	// ServiceAccount: one without rights on Secrets is denied there too.
	if err := env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.a, Name: "api"},
		Data: map[string][]byte{"password": []byte(password)}}); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.SetUpRunner(context.Background(), env.Client, w.a, "builder", nil); err != nil {
		t.Fatal(err)
	}
	run = runStep(t, w.a, "headers", "builder", "get-with-secrets", map[string]any{"url": "https://api.tenant.invalid/", "header": "api"})
	wantDenied(t, run, "serviceaccount "+w.a+`/builder may not get secrets "api" in namespace "`+w.a+`"`)

	// The default runner's own rights work.
	wantSucceeded(t, runStep(t, w.a, "export-home", "", "export2config", map[string]any{"configName": "mine", "data": map[string]any{"k": "v"}}))
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: w.a, Name: "mine"}, &cm); err != nil {
		t.Errorf("export2config into its own namespace: %v", err)
	}
	for _, key := range []types.NamespacedName{{Namespace: w.b, Name: "loot"}, {Namespace: "kube-system", Name: "pwn"}} {
		if err := env.Client.Get(context.Background(), key, &corev1.ConfigMap{}); err == nil {
			t.Errorf("%s was written", key)
		}
	}
}

// A ServiceAccount granted more does more: a deployer of tenant-a that may
// read platform's Secret db and write ConfigMaps in tenant-b.
func TestGrantedServiceAccount(t *testing.T) {
	w := newTenants(t, "granted", false)
	ctx := context.Background()
	if err := tenancy.SetUpRunner(ctx, env.Client, w.a, "deployer", nil); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.SetUpRunner(ctx, env.Client, w.platform, "read-db", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"db"}, Verbs: []string{"get"}}}); err != nil {
		t.Fatal(err)
	}
	bindTo(t, w.platform, "read-db", w.a, "deployer")
	bindTo(t, w.b, tenancy.DefaultServiceAccount, w.a, "deployer") // tenant-b's runner Role: ConfigMaps

	run := runStep(t, w.a, "read", "deployer", "read-object", map[string]any{"apiVersion": "v1", "kind": "Secret", "name": "db", "namespace": w.platform})
	wantSucceeded(t, run)
	wantSucceeded(t, runStep(t, w.a, "export", "deployer", "export2config", map[string]any{"configName": "shared", "namespace": w.b, "data": map[string]any{"k": "v"}}))
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: w.b, Name: "shared"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("export2config by the deployer into %s: %v", w.b, err)
	}
	// A Workflow's serviceAccountName applies to its runs.
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: w.a, Name: "deploy"}, ServiceAccountName: "deployer"}
	wf.Steps = []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "step", Type: "export2config",
		Properties: &runtime.RawExtension{Raw: []byte(`{"configName": "by-workflow", "namespace": "` + w.b + `", "data": {"k": "v"}}`)}}}}
	if err := env.Client.Create(ctx, wf); err != nil {
		t.Fatal(err)
	}
	byRef := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: w.a, Name: "by-ref"}}
	byRef.Spec.WorkflowRef = "deploy"
	if err := env.Client.Create(ctx, byRef); err != nil {
		t.Fatal(err)
	}
	wantSucceeded(t, waitRun(t, w.a, "by-ref", 30*time.Second, finishedRun))
}

// bindTo binds Role role of ns to ServiceAccount saNS/sa.
func bindTo(t *testing.T, ns, role, saNS, sa string) {
	t.Helper()
	b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role + "-" + sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNS, Name: sa}}}
	if err := env.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// --single-tenant: ops act with the controller's own rights, as before.
func TestSingleTenantActsAsTheController(t *testing.T) {
	w := newTenants(t, "single", true)
	wantSucceeded(t, runStep(t, w.a, "read", "", "read-object", map[string]any{"apiVersion": "v1", "kind": "Secret", "name": "db", "namespace": w.platform}))
	wantSucceeded(t, runStep(t, w.a, "export", "", "export2config", map[string]any{"configName": "x", "namespace": w.b, "data": map[string]any{"k": "v"}}))
}
