package query_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/query"
)

// The package's tests share one API server.
var env *testenv.Env

func TestMain(m *testing.M) {
	var stop func()
	env, stop = testenv.StartMain()
	code := m.Run()
	stop()
	os.Exit(code)
}

var _ query.Lister = (*clusters.Registry)(nil)

// fixture is a namespace holding objects of app "shop" (components web
// and db), of app "other", and unlabelled ones, and a ServiceAccount
// runner allowed to list the kinds in rules there.
type fixture struct {
	ns     string
	runner client.Client
}

func newFixture(t *testing.T, rules ...rbacv1.PolicyRule) *fixture {
	t.Helper()
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "query-"}}
	must(t, env.Client.Create(ctx, nsObj))
	ns := nsObj.Name
	for _, doc := range strings.Split(shopObjects, "---\n") {
		obj := map[string]any{}
		must(t, yaml.Unmarshal([]byte(doc), &obj))
		u := unstructuredOf(obj)
		u.SetNamespace(ns)
		status, hasStatus := obj["status"]
		must(t, env.Client.Create(ctx, u))
		if hasStatus {
			u.Object["status"] = status
			must(t, env.Client.Status().Update(ctx, u))
		}
	}
	return &fixture{ns: ns, runner: runnerClient(t, ns, "runner", ns, rules)}
}

// runnerClient binds rules in ns to ServiceAccount sans/name and returns a
// client acting as it, once the authorizer lets it.
func runnerClient(t *testing.T, sans, name, ns string, rules []rbacv1.PolicyRule) client.Client {
	t.Helper()
	ctx := context.Background()
	user := "system:serviceaccount:" + sans + ":" + name
	if len(rules) > 0 {
		must(t, env.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}))
		must(t, env.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sans, Name: name}},
		}))
		r := rules[len(rules)-1]
		testenv.WaitAllowed(t, env.Client, user, authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "list", Group: r.APIGroups[0], Resource: r.Resources[0]})
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sans, "system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	must(t, err)
	return c
}

var readRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"list"}},
	{APIGroups: []string{""}, Resources: []string{"services", "configmaps", "pods"}, Verbs: []string{"list"}},
}

const shopObjects = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {stepflow.dev/app-id: shop, app.oam.dev/component: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  labels: {stepflow.dev/app-id: shop, app.oam.dev/component: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {stepflow.dev/app-id: shop, app.oam.dev/component: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, appProtocol: http}
---
apiVersion: v1
kind: Service
metadata:
  name: web-public
  labels: {stepflow.dev/app-id: shop, app.oam.dev/component: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {port: 443, targetPort: 8443}
status:
  loadBalancer: {ingress: [{ip: 203.0.113.7}, {hostname: shop.example.com}]}
---
apiVersion: v1
kind: Service
metadata:
  name: db
  labels: {stepflow.dev/app-id: shop, app.oam.dev/component: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {port: 5432, protocol: TCP}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {stepflow.dev/app-id: shop, app.oam.dev/component: web}
data: {a: b}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  labels: {app: db}
spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels: {app: stray}
spec: {containers: [{name: x, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: other
  labels: {stepflow.dev/app-id: other, app.oam.dev/component: other}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: other, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unlabelled
data: {a: b}
`

// call runs op do of family f for a step of run r in ns with params.
func call(t *testing.T, f op.Family, do, ns string, params any) (op.Result, error) {
	t.Helper()
	o := f.Ops()[do]
	if o == nil {
		t.Fatalf("no op %s", do)
	}
	return o.Run(context.Background(), &op.Call{
		Name: op.Name{Provider: f.Provider(), Do: do}, Path: "q", Op: o, Params: params,
		Step: op.Step{RunName: "r", Namespace: ns, StepName: "s", StepID: "s-1", ServiceAccount: "runner"},
	})
}

// decode makes params of op do from the JSON a template's call decodes to.
func decode(t *testing.T, f op.Family, do, js string) any {
	t.Helper()
	p := f.Ops()[do].NewParams()
	must(t, yaml.Unmarshal([]byte(js), p))
	return p
}

// summary is each listed item as "cluster component Kind/name".
func summary(t *testing.T, res op.Result) []string {
	t.Helper()
	list := res.Returns.(map[string]any)["list"].([]any)
	out := []string{}
	for _, e := range list {
		m := e.(map[string]any)
		obj := m["object"].(map[string]any)
		md := obj["metadata"].(map[string]any)
		out = append(out, m["cluster"].(string)+" "+m["component"].(string)+" "+obj["kind"].(string)+"/"+md["name"].(string))
	}
	return out
}

func TestListAndCollect(t *testing.T) {
	fx := newFixture(t, readRules...)
	f := query.New(kube.LocalAs(func(context.Context, op.Step) (client.Client, error) { return fx.runner, nil }))
	cases := []struct {
		name, do, params string
		want             []string
	}{
		{"every default kind of the app", "listResourcesInApp", `{"app": {"name": "shop", "namespace": "` + fx.ns + `"}}`,
			[]string{"local web Deployment/web", "local db StatefulSet/db", "local db Service/db", "local web Service/web",
				"local web Service/web-public", "local web ConfigMap/web-config"}},
		{"the run's namespace when none is given", "listResourcesInApp", `{"app": {"name": "shop", "filter": {"components": ["db"]}}}`,
			[]string{"local db StatefulSet/db", "local db Service/db"}},
		{"one kind", "listResourcesInApp", `{"app": {"name": "shop", "filter": {"kind": "Deployment", "apiVersion": "apps/v1"}}}`,
			[]string{"local web Deployment/web"}},
		{"clusterNamespace over namespace", "listResourcesInApp", `{"app": {"name": "shop", "namespace": "elsewhere", "filter": {"clusterNamespace": "` + fx.ns + `", "kind": "ConfigMap", "apiVersion": "v1"}}}`,
			[]string{"local web ConfigMap/web-config"}},
		{"an app with nothing here", "listResourcesInApp", `{"app": {"name": "nothing"}}`, []string{}},
		{"pods through the workloads' selectors", "collectResources", `{"app": {"name": "shop", "filter": {"kind": "Pod", "apiVersion": "v1"}}}`,
			[]string{"local web Pod/web-1", "local db Pod/db-0"}},
		{"pods of one component", "collectResources", `{"app": {"name": "shop", "filter": {"kind": "Pod", "apiVersion": "v1", "components": ["web"]}}}`,
			[]string{"local web Pod/web-1"}},
		{"services", "collectResources", `{"app": {"name": "shop", "filter": {"kind": "Service", "apiVersion": "v1", "components": ["web"]}}}`,
			[]string{"local web Service/web", "local web Service/web-public"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := call(t, f, c.do, fx.ns, decode(t, f, c.do, c.params))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, summary(t, res)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestServiceEndpoints(t *testing.T) {
	fx := newFixture(t, readRules...)
	f := query.New(kube.LocalAs(func(context.Context, op.Step) (client.Client, error) { return fx.runner, nil }))
	res, err := call(t, f, "collectServiceEndpoints", fx.ns, decode(t, f, "collectServiceEndpoints", `{"app": {"name": "shop"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ref := func(name string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Service", "name": name, "namespace": fx.ns}
	}
	want := []any{
		// db is headless: no in-cluster address of its own.
		map[string]any{"cluster": "local", "component": "web", "ref": ref("web"), "endpoint": map[string]any{
			"protocol": "TCP", "appProtocol": "http", "portName": "http", "host": "web." + fx.ns, "port": int64(80), "inner": true}},
		map[string]any{"cluster": "local", "component": "web", "ref": ref("web-public"), "endpoint": map[string]any{
			"protocol": "TCP", "host": "web-public." + fx.ns, "port": int64(443), "inner": true}},
		map[string]any{"cluster": "local", "component": "web", "ref": ref("web-public"), "endpoint": map[string]any{
			"protocol": "TCP", "host": "203.0.113.7", "port": int64(443), "inner": false}},
		map[string]any{"cluster": "local", "component": "web", "ref": ref("web-public"), "endpoint": map[string]any{
			"protocol": "TCP", "host": "shop.example.com", "port": int64(443), "inner": false}},
	}
	if d := cmp.Diff(want, res.Returns.(map[string]any)["list"]); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// What cannot work fails for good, naming the op and why.
func TestErrors(t *testing.T) {
	fx := newFixture(t, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list"}})
	f := query.New(kube.LocalAs(func(context.Context, op.Step) (client.Client, error) { return fx.runner, nil }))
	cases := []struct {
		name, do, params string
		want             []string
	}{
		{"no app name", "listResourcesInApp", `{"app": {}}`, []string{"query.listResourcesInApp", "app.name"}},
		{"kind without apiVersion", "listResourcesInApp", `{"app": {"name": "shop", "filter": {"kind": "Deployment"}}}`,
			[]string{"filter.kind and filter.apiVersion go together"}},
		{"a kind not served", "listResourcesInApp", `{"app": {"name": "shop", "filter": {"kind": "Widget", "apiVersion": "example.dev/v1"}}}`,
			[]string{`no kind "Widget" in group "example.dev"`, "is its CRD installed?"}},
		{"the identity may not list deployments", "listResourcesInApp", `{"app": {"name": "shop"}}`,
			[]string{"query.listResourcesInApp: listing apps/v1 Deployment", "forbidden"}},
		{"the identity may not list pods", "collectResources", `{"app": {"name": "shop", "filter": {"kind": "Pod", "apiVersion": "v1"}}}`,
			[]string{"forbidden"}},
		{"an unknown cluster", "collectServiceEndpoints", `{"app": {"name": "shop", "filter": {"cluster": "nowhere"}}}`, []string{"nowhere"}},
		{"KubeVela's resource tracker", "listAppliedResources", `{"app": {"name": "shop"}}`,
			[]string{"query.listAppliedResources is not supported by Stepflow", "resource tracker"}},
		{"KubeVela's dashboard", "collectLogsInPod", `{}`, []string{"query.collectLogsInPod is not supported by Stepflow"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := call(t, f, c.do, fx.ns, decode(t, f, c.do, c.params))
			if err == nil || !op.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
	// Services the identity may list: endpoints work.
	if _, err := call(t, f, "collectServiceEndpoints", fx.ns, decode(t, f, "collectServiceEndpoints", `{"app": {"name": "shop"}}`)); err != nil {
		t.Fatalf("endpoints with services allowed: %v", err)
	}
}

// list-clusters names the cluster Secrets of the system namespace as the
// step's identity sees them, through the cluster registry.
func TestListClusters(t *testing.T) {
	ctx := context.Background()
	sysObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "query-system-"}}
	must(t, env.Client.Create(ctx, sysObj))
	sys := sysObj.Name
	for name, labelled := range map[string]bool{"west": true, "edge": true, "plain": false} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: name}, StringData: map[string]string{"endpoint": "https://" + name + ".example:6443", "token": "t"}}
		if labelled {
			s.Labels = map[string]string{clusters.CredentialTypeLabel: string(clusters.ServiceAccountToken)}
		}
		must(t, env.Client.Create(ctx, s))
	}
	tenantObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "query-tenant-"}}
	must(t, env.Client.Create(ctx, tenantObj))
	tenant := tenantObj.Name
	allowed := runnerClient(t, tenant, "runner", sys, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}})
	denied := runnerClient(t, tenant, "nobody", sys, nil)
	registry := func(c client.Client) kube.Clusters {
		as := func(context.Context, op.Step) (client.Client, error) { return c, nil }
		r, err := clusters.New(clusters.Options{SystemNamespace: sys, Local: kube.LocalAs(as),
			Secrets: func(ctx context.Context, step op.Step) (client.Reader, error) { return as(ctx, step) }})
		must(t, err)
		return r
	}
	cases := []struct {
		name     string
		clusters kube.Clusters
		want     any
		wantErr  string
	}{
		{"the labelled Secrets, sorted", registry(allowed), []any{"edge", "west"}, ""},
		{"no right to list them", registry(denied), nil, "forbidden"},
		{"clusters that cannot list", kube.Local(env.Client), []any{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := call(t, query.NewMulticluster(c.clusters), "list-clusters", tenant, &struct{}{})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := res.Returns.(map[string]any)["outputs"].(map[string]any)["clusters"]
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func unstructuredOf(obj map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
