package controller_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// installShipped installs the shipped step and component definitions
// (definitions/*.cue, definitions/components/*.cue) into ns, as the chart
// does.
func installShipped(t *testing.T, ns string) {
	t.Helper()
	steps, _ := filepath.Glob("../../definitions/*.cue")
	components, _ := filepath.Glob("../../definitions/components/*.cue")
	if len(steps) == 0 || len(components) == 0 {
		t.Fatal("no shipped definitions found")
	}
	for _, f := range append(steps, components...) {
		src, err := definition.FromFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		meta := metav1.ObjectMeta{Namespace: ns, Name: src.Name}
		schematic := &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: src.Template}}
		var obj client.Object = &v1beta1.WorkflowStepDefinition{ObjectMeta: meta, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: schematic}}
		if src.Type == "component" {
			obj = &v1beta1.ComponentDefinition{ObjectMeta: meta, Spec: v1beta1.ComponentDefinitionSpec{Schematic: schematic}}
		}
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// deployRules let a namespace's runs deploy the shipped component types
// and roll back.
var deployRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"statefulsets", "deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"services", "configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "watch", "create"}},
}

// badApp is an application of two components, web (a Deployment) and db,
// whose workflow is steps (YAML, indented under workflow.steps).
func badApp(components, steps string) []byte {
	if components == "" {
		components = `
  - revisionName: "K8S_MICROSERVICE|web|_"
    parameterValues:
    - {name: image, value: "web:1", toFieldPaths: [spec.image]}
  - revisionName: "K8S_MICROSERVICE|db|_"
    parameterValues:
    - {name: image, value: "db:1", toFieldPaths: [spec.image]}
    - {name: kind, value: StatefulSet, toFieldPaths: [spec.kind]}`
	}
	return []byte(`apiVersion: core.oam.dev/v1alpha2
kind: ApplicationConfiguration
metadata:
  annotations: {appId: shop}
spec:
  components:` + components + `
  policies:
  - {name: here, type: topology, properties: {namespace: elsewhere}}
  workflow:
    steps:
` + steps)
}

// Bad input to the deployment flows gives a failed step whose message
// names the culprit, and applies nothing that the message does not own up
// to: every case here fails before its first apply.
func TestDeploymentBadInput(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "deploy-bad")
	if err := tenancy.SetUpRunner(ctx, env.Client, ns, tenancy.DefaultServiceAccount, append(append([]rbacv1.PolicyRule(nil), runnerRules...), deployRules...)); err != nil {
		t.Fatal(err)
	}
	sys := namespace(t, "sys-deploy-bad")
	installShipped(t, sys)
	// The runner may read cluster Secrets, so it learns that a cluster is
	// unknown rather than that it may not use it.
	grantSecrets(t, sys, ns)
	gone := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "gone",
		Labels: map[string]string{"cluster.core.oam.dev/cluster-credential-type": "ServiceAccountToken"}},
		Data: map[string][]byte{"endpoint": []byte("https://127.0.0.1:1"), "token": []byte("not-a-real-token")}}
	if err := env.Client.Create(ctx, gone); err != nil {
		t.Fatal(err)
	}
	charts := brokenChartRepository(t)
	startController(t, sys)

	cases := []struct {
		name, components, steps string
		// context is the run's initial context.
		context map[string]any
		want    []string
	}{
		{name: "unknown-component-type",
			components: `
  - revisionName: "NOSUCH|web|_"`,
			steps: `    - {type: deploy}`,
			want:  []string{"NOSUCH", "nosuch"}},
		{name: "component-not-in-configuration",
			steps: `    - {type: apply-components, properties: {components: [{type: K8S_MICROSERVICE, name: cache}]}}`,
			want:  []string{"K8S_MICROSERVICE|cache"}},
		{name: "unknown-policy",
			steps: `    - {type: apply-components, properties: {components: [{type: K8S_MICROSERVICE, name: web}], policies: [nowhere]}}`,
			want:  []string{"nowhere"}},
		{name: "rollout-type",
			steps: `    - {type: apply-components, properties: {components: [{type: K8S_MICROSERVICE, name: db}], rollout: {type: bluegreen, properties: {partition: 1}}}}`,
			want:  []string{`rollout type "bluegreen" is not supported`}},
		{name: "partition-not-numeric",
			steps: `    - {type: apply-components, properties: {components: [{type: K8S_MICROSERVICE, name: db}], rollout: {type: partition, properties: {partition: "half"}}}}`,
			want:  []string{`rollout.properties.partition "half" is not a number`}},
		{name: "unknown-cluster",
			steps: `    - {type: remote-deploy, properties: {cluster: atlantis}}`,
			want:  []string{`unknown cluster "atlantis"`}},
		{name: "unreachable-cluster",
			steps: `    - {type: remote-deploy, properties: {cluster: gone}, retry: {limit: 0}}`,
			want:  []string{`cluster "gone" unreachable`}},
		{name: "chart-does-not-render",
			components: `
  - revisionName: "HELM|site|_"
    parameterValues:
    - {name: repo, value: "` + charts + `", toFieldPaths: [spec.repo]}
    - {name: chart, value: site, toFieldPaths: [spec.chart]}`,
			steps: `    - {type: deploy}`,
			want:  []string{`site`, "broken on purpose"}},
		{name: "rollback-without-deploy",
			steps:   `    - {type: rollout-promotion}`,
			context: map[string]any{"continueRollout": false, "rollback": true},
			want:    []string{"nothing to roll back to"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "bad-" + c.name
			if _, err := app.Run(ctx, env.Client, app.Request{Configuration: badApp(c.components, c.steps), Category: "DEPLOY",
				Namespace: ns, Name: name, Context: c.context}); err != nil {
				t.Fatal(err)
			}
			run := waitRun(t, ns, name, 30*time.Second, finishedRun)
			assertFailedNaming(t, run, c.want...)
		})
	}

	// A malformed revisionName cannot be launched (app.Build refuses it);
	// a run written by hand with such a configuration fails its step.
	t.Run("malformed-revision-name", func(t *testing.T) {
		doc := badApp(`
  - revisionName: "K8S_MICROSERVICE/web"`, `    - {type: deploy}`)
		sum := sha256.Sum256(doc)
		run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-revision",
			Labels:      map[string]string{app.LabelAppID: "shop", app.LabelCategory: "DEPLOY"},
			Annotations: map[string]string{app.AnnotationConfiguration: string(doc), app.AnnotationSHA256: hex.EncodeToString(sum[:])}}}
		run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "deploy", Type: "deploy"}}}}
		if err := env.Client.Create(ctx, run); err != nil {
			t.Fatal(err)
		}
		got := waitRun(t, ns, "bad-revision", 30*time.Second, finishedRun)
		assertFailedNaming(t, got, "K8S_MICROSERVICE/web")
	})

	var objs corev1.ServiceList
	if err := env.Client.List(ctx, &objs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(objs.Items) != 0 {
		t.Errorf("bad input applied %d Services", len(objs.Items))
	}
}

// grantSecrets lets the default runner of ns get every Secret of sys.
func grantSecrets(t *testing.T, sys, ns string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "clusters-" + ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "clusters-" + ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: tenancy.DefaultServiceAccount}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

// brokenChartRepository serves a chart repository whose one chart, site
// 1.0.0, fails to render, and returns its URL.
func brokenChartRepository(t *testing.T) string {
	t.Helper()
	files := []struct{ name, body string }{
		{"site/Chart.yaml", "apiVersion: v2\nname: site\nversion: 1.0.0\n"},
		{"site/templates/cm.yaml", "{{ fail \"broken on purpose\" }}\n"},
	}
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.yaml":
			fmt.Fprintf(w, "apiVersion: v1\nentries:\n  site:\n  - {apiVersion: v2, name: site, version: 1.0.0, urls: [%s/site-1.0.0.tgz]}\n", srv.URL)
		case "/site-1.0.0.tgz":
			_, _ = w.Write(tgz.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// assertFailedNaming checks that run failed and that its failed step's
// message contains every one of want.
func assertFailedNaming(t *testing.T, run *v1alpha1.WorkflowRun, want ...string) {
	t.Helper()
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		b, _ := yaml.Marshal(run.Status)
		t.Fatalf("run %s is %s, want failed; status:\n%s", run.Name, run.Status.Phase, b)
	}
	var msgs []string
	for _, s := range run.Status.Steps {
		if s.Phase == v1alpha1.WorkflowStepPhaseFailed && s.Reason != engine.ReasonTerminate {
			msgs = append(msgs, s.Message)
		}
	}
	all := strings.Join(msgs, "\n")
	t.Logf("%s: %s", run.Name, all)
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("run %s: failed steps' messages do not name %q:\n%s", run.Name, w, all)
		}
	}
}
