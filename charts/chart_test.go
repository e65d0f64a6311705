// Package charts tests the Helm chart in stepflow/: helm lints and renders
// it, and the tests check the rendered objects against what the controller
// needs (its flags, its rights) and against the generated files the chart
// ships (CRDs, step definitions).
//
// The tests run the helm binary: $HELM, else the repository's bin/helm
// (`make helm` builds it; `make test` does so first), else helm on PATH.
package charts

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

const (
	chart       = "stepflow"
	release     = "stepflow"
	namespace   = "stepflow-system"
	description = "definition.oam.dev/description"
)

// controllerRules are the controller's own rights, as README.md documents
// them; they do not depend on values.
var controllerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns", "workflows", "workflowschedules", "workflowstepdefinitions", "componentdefinitions"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"create", "patch", "delete"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns/status", "workflowschedules/status", "workflowstepdefinitions/status", "componentdefinitions/status"}, Verbs: []string{"patch", "update"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns/finalizers", "workflowschedules/finalizers"}, Verbs: []string{"update"}},
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create", "get", "list", "watch", "patch", "update"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, ResourceNames: []string{"kubernetes"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
}

// singleTenantControllerRules are the controller's own rights with
// singleTenant: no impersonation, no access reviews.
var singleTenantControllerRules = controllerRules[:len(controllerRules)-2]

// defaultOpsRules are rbac.opsRules by default: what the shipped
// definitions need, as values.yaml and README.md document it.
var defaultOpsRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"deletecollection"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"applications"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "watch", "create"}},
}

func TestLint(t *testing.T) {
	if out, err := helmCmd(t, "lint", "--strict", chart).CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

func TestDefinitionsAreGenerated(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go on PATH to run hack/gendefs: %v", err)
	}
	fresh := t.TempDir()
	cmd := exec.Command(goBin, "run", "./hack/gendefs", "-out", fresh)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./hack/gendefs: %v\n%s", err, out)
	}
	if diff := cmp.Diff(readDir(t, fresh), readDir(t, filepath.Join(chart, "definitions"))); diff != "" {
		t.Errorf("charts/stepflow/definitions is stale; run `make generate` (-generated +committed):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	r := render(t, "")

	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	c := d.Spec.Template.Spec.Containers[0]
	wantArgs := []string{
		"controller",
		"--system-namespace=vela-system",
		"--max-concurrent-reconciles=8",
		"--step-parallelism=8",
		"--kube-api-qps=50",
		"--kube-api-burst=100",
		"--eval-workers=2",
		"--eval-memory-limit=256",
		"--eval-timeout=10s",
		"--leader-elect=false",
		"--metrics-bind-address=:8443",
		"--metrics-secure=true",
		"--health-probe-bind-address=$(POD_IP):8081",
		"--log-development=false",
		"--single-tenant=false",
		"--default-service-account=stepflow-runner",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	if c.Image != "ghcr.io/stepflow-dev/stepflow:0.1.0" {
		t.Errorf("image %q, want the appVersion's", c.Image)
	}
	checkProbes(t, c)
	checkListeners(t, c)
	if p := port(c, "metrics"); p != 8443 {
		t.Errorf("metrics container port %d, want 8443", p)
	}
	svc := as[corev1.Service](t, r.one(t, "Service", namespace, release+"-metrics"))
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics service ports %+v", svc.Spec.Ports)
	}

	sa := r.one(t, "ServiceAccount", namespace, release)
	if got := d.Spec.Template.Spec.ServiceAccountName; got != sa.GetName() {
		t.Errorf("pods run as %q, not the chart's ServiceAccount %q", got, sa.GetName())
	}
	checkBound(t, r, "ClusterRole", "", release+"-controller", sa.GetName(), controllerRules)
	checkControllerConfined(t, r, sa.GetName())
	checkUnbound(t, r, release+"-runner", defaultOpsRules)
	checkBound(t, r, "ClusterRole", "", release+"-metrics-auth", sa.GetName(), metricsAuthRules)
	reader := as[rbacv1.ClusterRole](t, r.one(t, "ClusterRole", "", release+"-metrics-reader"))
	if diff := cmp.Diff([]rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}, reader.Rules); diff != "" {
		t.Errorf("metrics-reader rules (-want +got):\n%s", diff)
	}
	if got := r.withoutServer().all("Role"); len(got) != 0 {
		t.Errorf("a Role without leader election: %v", names(got))
	}
	checkNoWildcards(t, r)

	checkDefinitions(t, r, "vela-system")
	checkCRDs(t, r)
}

func TestOverrides(t *testing.T) {
	r := render(t, `
systemNamespace: workflows
replicas: 2
concurrency: {maxConcurrentReconciles: 32}
stepParallelism: 4
kubeAPI: {qps: 7.5, burst: 20}
evaluator: {workers: 4, memoryLimitMiB: 512, timeout: 3s}
leaderElection: {enabled: true, namespace: leases}
metrics: {enabled: false}
logDevelopment: true
installDefinitions: false
rbac:
  opsRules:
    - apiGroups: [batch]
      resources: [jobs]
      verbs: [get, list, watch, create, patch]
`)

	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	c := d.Spec.Template.Spec.Containers[0]
	wantArgs := []string{
		"controller",
		"--system-namespace=workflows",
		"--max-concurrent-reconciles=32",
		"--step-parallelism=4",
		"--kube-api-qps=7.5",
		"--kube-api-burst=20",
		"--eval-workers=4",
		"--eval-memory-limit=512",
		"--eval-timeout=3s",
		"--leader-elect=true",
		"--leader-election-namespace=leases",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=$(POD_IP):8081",
		"--log-development=true",
		"--single-tenant=false",
		"--default-service-account=stepflow-runner",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
	}
	checkProbes(t, c)
	if p := port(c, "metrics"); p != 0 {
		t.Errorf("a metrics port %d with metrics disabled", p)
	}
	if got := r.withoutServer().all("Service"); len(got) != 0 {
		t.Errorf("a Service with metrics disabled: %v", names(got))
	}
	for _, name := range []string{release + "-metrics-auth", release + "-metrics-reader"} {
		if r.has("ClusterRole", "", name) {
			t.Errorf("ClusterRole %s with metrics disabled", name)
		}
	}

	sa := d.Spec.Template.Spec.ServiceAccountName
	checkBound(t, r, "ClusterRole", "", release+"-controller", sa, controllerRules)
	checkUnbound(t, r, release+"-runner", []rbacv1.PolicyRule{
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
	})
	checkControllerConfined(t, r, sa)
	checkBound(t, r, "Role", "leases", release+"-leader-election", sa, []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"stepflow-controller"}, Verbs: []string{"get", "update"}},
	})
	checkNoWildcards(t, r)

	if got := r.all("WorkflowStepDefinition"); len(got) != 0 {
		t.Errorf("definitions installed with installDefinitions false: %v", names(got))
	}
	checkCRDs(t, r)
}

func TestNoOpsRules(t *testing.T) {
	r := render(t, "rbac: {opsRules: []}\n")
	if got := r.all("ClusterRole"); r.has("ClusterRole", "", release+"-ops") || r.has("ClusterRole", "", release+"-runner") || !r.has("ClusterRole", "", release+"-controller") {
		t.Errorf("ClusterRoles %v, want the controller's and no ops or runner role", names(got))
	}
}

// metrics.secure false: plain HTTP, no filter, so no review rights; the
// operator opted in to an open listener.
func TestInsecureMetrics(t *testing.T) {
	r := render(t, "metrics: {secure: false, port: 9090}\n")
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	args := d.Spec.Template.Spec.Containers[0].Args
	if !contains(args, "--metrics-bind-address=:9090") || contains(args, "--metrics-secure=true") {
		t.Errorf("args %v: want plain metrics on :9090", args)
	}
	for _, name := range []string{release + "-metrics-auth", release + "-metrics-reader"} {
		if r.has("ClusterRole", "", name) {
			t.Errorf("ClusterRole %s with insecure metrics", name)
		}
	}
}

// metrics.certSecret: the secure endpoint serves the Secret's certificate,
// mounted read-only.
func TestMetricsCertSecret(t *testing.T) {
	r := render(t, "metrics: {certSecret: stepflow-metrics-tls}\n")
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	c := d.Spec.Template.Spec.Containers[0]
	if !contains(c.Args, "--metrics-secure=true") || !contains(c.Args, "--metrics-cert-dir=/etc/stepflow/metrics-tls") {
		t.Errorf("args %v: want secure metrics with --metrics-cert-dir", c.Args)
	}
	want := []corev1.VolumeMount{{Name: "metrics-tls", MountPath: "/etc/stepflow/metrics-tls", ReadOnly: true}}
	if diff := cmp.Diff(want, c.VolumeMounts); diff != "" {
		t.Errorf("volume mounts (-want +got):\n%s", diff)
	}
	vols := d.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].Name != "metrics-tls" || vols[0].Secret == nil || vols[0].Secret.SecretName != "stepflow-metrics-tls" {
		t.Errorf("volumes %+v: want Secret stepflow-metrics-tls as metrics-tls", vols)
	}
	checkListeners(t, c)
}

// singleTenant: the controller acts for every step, with rbac.opsRules
// granted to it, as before runs had identities.
func TestSingleTenant(t *testing.T) {
	r := render(t, "singleTenant: true\nrunner: {namespaces: [team-a]}\n")
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	args := d.Spec.Template.Spec.Containers[0].Args
	if !contains(args, "--single-tenant=true") {
		t.Errorf("args %v lack --single-tenant=true", args)
	}
	sa := d.Spec.Template.Spec.ServiceAccountName
	checkBound(t, r, "ClusterRole", "", release+"-controller", sa, singleTenantControllerRules)
	checkBound(t, r, "ClusterRole", "", release+"-ops", sa, defaultOpsRules)
	if r.has("ClusterRole", "", release+"-runner") || len(r.withoutServer().all("RoleBinding")) != 0 {
		t.Errorf("runner roles or bindings in a single-tenant install: %v", names(r))
	}
	checkNoWildcards(t, r)
}

// runner.namespaces: the default ServiceAccount and its binding to the
// runner role in each, and nowhere else.
func TestRunnerNamespaces(t *testing.T) {
	r := render(t, "runner: {namespaces: [team-a, team-b], defaultServiceAccount: deployer}\n")
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	if args := d.Spec.Template.Spec.Containers[0].Args; !contains(args, "--default-service-account=deployer") {
		t.Errorf("args %v lack --default-service-account=deployer", args)
	}
	for _, ns := range []string{"team-a", "team-b"} {
		r.one(t, "ServiceAccount", ns, "deployer")
		b := as[rbacv1.RoleBinding](t, r.one(t, "RoleBinding", ns, release+"-runner"))
		if want := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release + "-runner"}); b.RoleRef != want {
			t.Errorf("%s: RoleBinding refers to %+v, want %+v", ns, b.RoleRef, want)
		}
		want := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: ns}}
		if diff := cmp.Diff(want, b.Subjects); diff != "" {
			t.Errorf("%s: RoleBinding subjects (-want +got):\n%s", ns, diff)
		}
	}
	if n := len(r.withoutServer().all("RoleBinding")); n != 2 {
		t.Errorf("%d RoleBindings, want one per runner namespace", n)
	}
	checkUnbound(t, r, release+"-runner", defaultOpsRules)
	checkControllerConfined(t, r, d.Spec.Template.Spec.ServiceAccountName)
}

// rbac.watchRules: the controller may read and watch the kinds steps wait
// on, nothing more, and never Secrets.
func TestWatchRules(t *testing.T) {
	r := render(t, "rbac: {watchRules: [{apiGroups: [apps], resources: [deployments, statefulsets], verbs: [create, delete]}]}\n")
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	checkBound(t, r, "ClusterRole", "", release+"-watch", d.Spec.Template.Spec.ServiceAccountName, []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch"}},
	})
	if r := render(t, ""); r.has("ClusterRole", "", release+"-watch") {
		t.Errorf("a watch role by default")
	}
}

func TestInvalidValues(t *testing.T) {
	for name, tc := range map[string]struct{ values, want string }{
		"replicas without leader election": {"replicas: 2\n", "needs leaderElection.enabled"},
		"metrics on the probes' port":      {"metrics: {port: 8081}\n", "health probes' port"},
		"no service account named":         {"serviceAccount: {create: false}\n", "serviceAccount.name is required"},
		"secrets to watch":                 {"rbac: {watchRules: [{apiGroups: [\"\"], resources: [secrets]}]}\n", "may not name secrets"},
		"everything to watch":              {"rbac: {watchRules: [{apiGroups: [\"*\"], resources: [\"*\"]}]}\n", "may not name secrets"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := helmCmd(t, "template", release, chart, "--namespace", namespace, "-f", valuesFile(t, tc.values)).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("want a failure saying %q, got %v:\n%s", tc.want, err, out)
			}
		})
	}
}

// checkProbes checks the probes against the controller's health endpoints.
func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	if p := port(c, "probes"); p != 8081 {
		t.Errorf("probes container port %d, want 8081", p)
	}
	for path, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.StrVal != "probes" {
			t.Errorf("want a probe of %s on port probes, got %+v", path, probe)
		}
	}
}

// metricsAuthRules let the secure metrics endpoint check its callers.
var metricsAuthRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
}

// checkListeners fails on a listener open to anyone who reaches the pod:
// a bind address on every interface (":port", 0.0.0.0, [::]) that is not
// the secure metrics endpoint. The probes must bind the pod IP, which the
// container's POD_IP comes from.
func checkListeners(t *testing.T, c corev1.Container) {
	t.Helper()
	flags := map[string]string{}
	for _, a := range c.Args {
		if k, v, ok := strings.Cut(a, "="); ok {
			flags[k] = v
		}
	}
	allInterfaces := func(addr string) bool {
		host, _, err := net.SplitHostPort(addr)
		return err != nil || host == "" || host == "0.0.0.0" || host == "::"
	}
	if addr := flags["--metrics-bind-address"]; addr != "0" && allInterfaces(addr) && flags["--metrics-secure"] != "true" {
		t.Errorf("metrics listen on every interface (%q) without --metrics-secure", addr)
	}
	if addr := flags["--health-probe-bind-address"]; addr != "0" && (allInterfaces(addr) || !strings.HasPrefix(addr, "$(POD_IP):")) {
		t.Errorf("probes listen on %q, not the pod IP", addr)
	}
	var podIP bool
	for _, e := range c.Env {
		if e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP" {
			podIP = true
		}
	}
	if !podIP {
		t.Errorf("no POD_IP from status.podIP in the container's env: %+v", c.Env)
	}
}

// checkBound checks that the (Cluster)Role kind/ns/name exists with rules,
// and that a binding of the same name grants it to ServiceAccount sa of
// the release's namespace.
func checkBound(t *testing.T, r rendered, kind, ns, name, sa string, rules []rbacv1.PolicyRule) {
	t.Helper()
	role := as[rbacv1.ClusterRole](t, r.one(t, kind, ns, name)) // a Role has the same fields
	if diff := cmp.Diff(rules, role.Rules); diff != "" {
		t.Errorf("%s %s rules (-want +got):\n%s", kind, name, diff)
	}
	b := as[rbacv1.RoleBinding](t, r.one(t, kind+"Binding", ns, name))
	want := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
	if b.RoleRef != want {
		t.Errorf("%sBinding %s refers to %+v, want %+v", kind, name, b.RoleRef, want)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: namespace}}
	if diff := cmp.Diff(subject, b.Subjects); diff != "" {
		t.Errorf("%sBinding %s subjects (-want +got):\n%s", kind, name, diff)
	}
}

// checkUnbound checks that ClusterRole name exists with rules and that no
// ClusterRoleBinding grants it: it is bound namespace by namespace.
func checkUnbound(t *testing.T, r rendered, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	role := as[rbacv1.ClusterRole](t, r.one(t, "ClusterRole", "", name))
	if diff := cmp.Diff(rules, role.Rules); diff != "" {
		t.Errorf("ClusterRole %s rules (-want +got):\n%s", name, diff)
	}
	for _, u := range r.all("ClusterRoleBinding") {
		if b := as[rbacv1.ClusterRoleBinding](t, u); b.RoleRef.Name == name {
			t.Errorf("ClusterRoleBinding %s grants %s cluster-wide", b.Name, name)
		}
	}
}

// journalConfigMapVerbs are the ConfigMap verbs the controller's own
// journals and debug values need, in every namespace a run may be in (RBAC
// cannot narrow a rule to their labels); no more.
var journalConfigMapVerbs = []string{"create", "get", "list", "watch", "patch", "update"}

// checkControllerConfined checks every rule bound to the controller's
// ServiceAccount sa: none grants Secrets or Deployments, ConfigMaps no
// more than its journals need, and it may impersonate ServiceAccounts and
// create SubjectAccessReviews, which is how ops act as their runs.
func checkControllerConfined(t *testing.T, r rendered, sa string) {
	t.Helper()
	roles := map[string]rbacv1.ClusterRole{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range r.all(kind) {
			roles[kind+"/"+u.GetNamespace()+"/"+u.GetName()] = as[rbacv1.ClusterRole](t, u)
		}
	}
	var impersonate, review bool
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, u := range r.all(kind) {
			b := as[rbacv1.RoleBinding](t, u)
			if !contains(subjectNames(b.Subjects, namespace), sa) {
				continue
			}
			ns := b.Namespace
			if b.RoleRef.Kind == "ClusterRole" {
				ns = ""
			}
			role, ok := roles[b.RoleRef.Kind+"/"+ns+"/"+b.RoleRef.Name]
			if !ok {
				t.Errorf("%s %s binds a %s %s the chart does not render", kind, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
				continue
			}
			for _, rule := range role.Rules {
				for _, res := range rule.Resources {
					switch {
					case res == "secrets" || res == "deployments":
						t.Errorf("%s %s grants the controller %v on %s", b.RoleRef.Kind, b.RoleRef.Name, rule.Verbs, res)
					case res == "configmaps":
						for _, v := range rule.Verbs {
							if !contains(journalConfigMapVerbs, v) {
								t.Errorf("%s %s grants the controller %s on configmaps, beyond what journals need", b.RoleRef.Kind, b.RoleRef.Name, v)
							}
						}
					case res == "serviceaccounts" && contains(rule.Verbs, "impersonate"):
						impersonate = true
					case res == "subjectaccessreviews" && contains(rule.APIGroups, "authorization.k8s.io") && contains(rule.Verbs, "create"):
						review = true
					}
				}
			}
		}
	}
	if !impersonate || !review {
		t.Errorf("the controller may impersonate ServiceAccounts: %v; create SubjectAccessReviews: %v; want both", impersonate, review)
	}
}

func subjectNames(subjects []rbacv1.Subject, ns string) []string {
	var out []string
	for _, s := range subjects {
		if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == ns {
			out = append(out, s.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkNoWildcards fails on a "*" in any rule of any role.
func checkNoWildcards(t *testing.T, r rendered) {
	t.Helper()
	for _, u := range append(r.all("ClusterRole"), r.all("Role")...) {
		for _, rule := range as[rbacv1.ClusterRole](t, u).Rules {
			for _, s := range append(append(append([]string{}, rule.APIGroups...), rule.Resources...), rule.Verbs...) {
				if strings.Contains(s, "*") {
					t.Errorf("%s %s grants %q: %+v", u.GetKind(), u.GetName(), s, rule)
				}
			}
		}
	}
}

// checkDefinitions checks that every generated definition file is rendered,
// unchanged, into namespace ns, and nothing else.
func checkDefinitions(t *testing.T, r rendered, ns string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chart, "definitions", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated definitions in %s/definitions (%v); run `make generate`", chart, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want v1beta1.WorkflowStepDefinition
		if err := yaml.UnmarshalStrict(b, &want); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got := as[v1beta1.WorkflowStepDefinition](t, r.one(t, "WorkflowStepDefinition", ns, want.Name))
		if got.APIVersion != v1beta1.GroupVersion.String() {
			t.Errorf("%s: apiVersion %q", want.Name, got.APIVersion)
		}
		if got.Annotations[description] != want.Annotations[description] {
			t.Errorf("%s: description %q, want %q", want.Name, got.Annotations[description], want.Annotations[description])
		}
		if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
			t.Errorf("%s: spec (-file +rendered):\n%s", want.Name, diff)
		}
	}
	if got := r.all("WorkflowStepDefinition"); len(got) != len(files) {
		t.Errorf("%d definitions rendered, %d files: %v", len(got), len(files), names(got))
	}

	components, err := filepath.Glob(filepath.Join(chart, "definitions", "components", "*.yaml"))
	if err != nil || len(components) == 0 {
		t.Fatalf("no generated component definitions in %s/definitions/components (%v); run `make generate`", chart, err)
	}
	for _, f := range components {
		var want v1beta1.ComponentDefinition
		if err := yaml.UnmarshalStrict(mustRead(t, f), &want); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got := as[v1beta1.ComponentDefinition](t, r.one(t, "ComponentDefinition", ns, want.Name))
		if got.Annotations[description] != want.Annotations[description] {
			t.Errorf("%s: description %q, want %q", want.Name, got.Annotations[description], want.Annotations[description])
		}
		if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
			t.Errorf("%s: spec (-file +rendered):\n%s", want.Name, diff)
		}
	}
	if got := r.all("ComponentDefinition"); len(got) != len(components) {
		t.Errorf("%d component definitions rendered, %d files: %v", len(got), len(components), names(got))
	}
}

// checkCRDs checks that every CRD in the chart's crds/ is rendered.
func checkCRDs(t *testing.T, r rendered) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chart, "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s/crds (%v)", chart, err)
	}
	for _, f := range files {
		objs := decode(t, f, mustRead(t, f))
		if len(objs) != 1 || objs[0].GetKind() != "CustomResourceDefinition" {
			t.Fatalf("%s: want one CustomResourceDefinition", f)
		}
		r.one(t, "CustomResourceDefinition", "", objs[0].GetName())
	}
	for _, name := range []string{"workflowruns.core.oam.dev", "workflows.core.oam.dev", "workflowstepdefinitions.core.oam.dev", "componentdefinitions.core.oam.dev"} {
		r.one(t, "CustomResourceDefinition", "", name)
	}
}

// rendered is the output of helm template.
type rendered []*unstructured.Unstructured

// render runs helm template with the default values overridden by values
// (YAML; "" overrides nothing), the CRDs included.
func render(t *testing.T, values string) rendered {
	t.Helper()
	args := []string{"template", release, chart, "--namespace", namespace, "--include-crds"}
	if values != "" {
		args = append(args, "-f", valuesFile(t, values))
	}
	cmd := helmCmd(t, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.Bytes())
	}
	return decode(t, "helm template", out)
}

// one returns the object of kind, namespace ns and name, failing when it
// is not there exactly once.
func (r rendered) one(t *testing.T, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, u := range r.all(kind) {
		if u.GetNamespace() == ns && u.GetName() == name {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s %s/%s rendered, want one; there are %v", len(found), kind, ns, name, names(r))
	}
	return found[0]
}

// has reports whether kind ns/name was rendered.
func (r rendered) has(kind, ns, name string) bool {
	for _, u := range r.all(kind) {
		if u.GetNamespace() == ns && u.GetName() == name {
			return true
		}
	}
	return false
}

// all returns the objects of kind.
func (r rendered) all(kind string) rendered {
	var out rendered
	for _, u := range r {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// decode reads a YAML stream into objects, skipping empty documents.
func decode(t *testing.T, what string, b []byte) rendered {
	t.Helper()
	var out rendered
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: %v", what, err)
		}
		if obj != nil {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// as converts u into the typed object T.
func as[T any](t *testing.T, u *unstructured.Unstructured) T {
	t.Helper()
	var obj T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &obj, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return obj
}

func names(r rendered) []string {
	var out []string
	for _, u := range r {
		out = append(out, u.GetKind()+" "+filepath.Join(u.GetNamespace(), u.GetName()))
	}
	return out
}

func port(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// helmCmd is a helm command run in this directory, whose config, cache and
// data stay in a temporary directory.
func helmCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	return cmd
}

// helmBinary finds helm: $HELM, the repository's bin/helm, or PATH's.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	if p, err := filepath.Abs(filepath.Join("..", "bin", "helm")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Fatal("no helm: run `make helm` (it builds bin/helm; `make test` does so first) or set $HELM")
	return ""
}

func valuesFile(t *testing.T, values string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			for name, content := range readDir(t, filepath.Join(dir, e.Name())) {
				files[e.Name()+"/"+name] = content
			}
			continue
		}
		files[e.Name()] = string(mustRead(t, filepath.Join(dir, e.Name())))
	}
	return files
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metrics.dashboard and metrics.prometheusRule: off by default; on, the
// dashboard ConfigMap carries the dashboard JSON under the sidecar's label,
// and the PrometheusRule the two alerts with the configured thresholds
// (and Prometheus' own template syntax left for Prometheus).
func TestMonitoring(t *testing.T) {
	r := render(t, "")
	if r.has("ConfigMap", namespace, release+"-dashboard") || len(r.all("PrometheusRule")) != 0 {
		t.Fatalf("monitoring objects rendered by default: %v", names(r))
	}
	r = render(t, "metrics: {dashboard: {enabled: true}, prometheusRule: {enabled: true, suspendedLongerThanSeconds: 3600, failureRatio: 0.5, labels: {release: prom}}}\n")
	cm := as[corev1.ConfigMap](t, r.one(t, "ConfigMap", namespace, release+"-dashboard"))
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard labels %v", cm.Labels)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["stepflow.json"]), &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("dashboard JSON: %v (%d panels)", err, len(dash.Panels))
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, m := range []string{"stepflow_runs", "stepflow_runs_oldest_age_seconds", "stepflow_run_duration_seconds_bucket", "stepflow_step_duration_seconds_bucket", "stepflow_op_calls_total", "stepflow_op_call_duration_seconds_bucket"} {
		if !strings.Contains(strings.Join(exprs, "\n"), m+"{") && !strings.Contains(strings.Join(exprs, "\n"), m+")") && !strings.Contains(strings.Join(exprs, "\n"), m+"[") {
			t.Errorf("no dashboard panel queries %s", m)
		}
	}
	rule := r.one(t, "PrometheusRule", namespace, release)
	if rule.GetLabels()["release"] != "prom" {
		t.Errorf("rule labels %v", rule.GetLabels())
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	if len(groups) != 1 {
		t.Fatalf("groups %v", groups)
	}
	rules, _, _ := unstructured.NestedSlice(groups[0].(map[string]any), "rules")
	got := map[string]map[string]any{}
	for _, x := range rules {
		m := x.(map[string]any)
		got[m["alert"].(string)] = m
	}
	for alert, want := range map[string][]string{
		"StepflowRunSuspendedTooLong": {`stepflow_runs_oldest_age_seconds{phase="suspending"}) > 3600`},
		"StepflowRunFailureRate":      {`stepflow_runs_finished_total{phase="failed"}`, "> 0.5"},
	} {
		m, ok := got[alert]
		if !ok {
			t.Errorf("no alert %s in %v", alert, rules)
			continue
		}
		for _, w := range want {
			if !strings.Contains(m["expr"].(string), w) {
				t.Errorf("alert %s expr %q lacks %q", alert, m["expr"], w)
			}
		}
		ann, _ := m["annotations"].(map[string]any)
		if d, _ := ann["description"].(string); !strings.Contains(d, "{{ $value") {
			t.Errorf("alert %s description %q: Prometheus' template was not left for Prometheus", alert, d)
		}
	}
}
