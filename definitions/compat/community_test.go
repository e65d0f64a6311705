package compat_test

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/kubelet"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// communityRuns are runs modelled on kubevela/workflow's examples
// (examples/workflow-run), one per chart definition, with outside services
// replaced by a local server ($URL below).
var communityRuns = map[string]string{
	"addon-operation":          `{name: op, type: addon-operation, properties: {addonName: fluxcd, operation: enable}}`,
	"apply-app":                `{name: app, type: apply-app, properties: {data: {apiVersion: core.oam.dev/v1beta1, kind: Application, metadata: {name: first}, spec: {components: [{name: web, type: webservice, properties: {image: nginx}}]}}}}`,
	"apply-deployment":         `{name: deploy-nginx, type: apply-deployment, properties: {image: "nginx:1.21"}}`,
	"apply-job":                `{name: job, type: apply-job, properties: {value: {apiVersion: batch/v1, kind: Job, metadata: {name: pi}, spec: {template: {spec: {restartPolicy: Never, containers: [{name: pi, image: perl}]}}}}}}`,
	"apply-object":             `{name: cm, type: apply-object, properties: {value: {apiVersion: v1, kind: ConfigMap, metadata: {name: from-apply-object}, data: {a: b}}}}`,
	"apply-terraform-config":   `{name: configuration, type: apply-terraform-config, properties: {source: {path: alibaba/cs, remote: "https://github.com/example/modules"}, providerRef: {name: my-provider}, writeConnectionSecretToRef: {name: tf-secret, namespace: community}, variable: {name: x}}}`,
	"apply-terraform-provider": `{name: provider, type: apply-terraform-provider, properties: {type: alibaba, name: my-provider, accessKey: ak, secretKey: sk, region: cn-hangzhou}}`,
	"build-push-image":         `{name: build, type: build-push-image, properties: {context: {git: "github.com/example/helloworld", branch: master}, image: "example/helloworld:v1", dockerfile: ./Dockerfile}}`,
	"chat-gpt":                 `{name: ask, type: chat-gpt, properties: {token: {value: t0ken}, prompt: {type: custom, content: "hello"}}}`,
	"clean-jobs":               `{name: clean, type: clean-jobs, properties: {labelselector: {app: test-app}}}`,
	"create-config":            `{name: create, type: create-config, properties: {name: app-settings, config: {host: postgres.default.svc, port: 5432}}}`,
	"delete-config": `{name: create, type: create-config, properties: {name: to-delete, config: {a: b}}}
    - {name: delete, type: delete-config, properties: {name: to-delete}}`,
	"export2config":           `{name: export, type: export2config, properties: {configName: app-config, data: {app-name: my-application}}}`,
	"export2secret":           `{name: export, type: export2secret, properties: {secretName: api-credentials, data: {api-key: sk-123}}}`,
	"list-config":             `{name: list, type: list-config, properties: {template: any}}`,
	"notification":            `{name: notify, type: notification, properties: {slack: {url: {value: "$URL/slack"}, message: {text: "hello from the workflow"}}}}`,
	"print-message-in-status": `{name: say, type: print-message-in-status, properties: {message: "Workflow started successfully"}}`,
	"read-app":                `{name: read, type: read-app, properties: {name: first}}`,
	"read-config": `{name: create, type: create-config, properties: {name: to-read, config: {a: b}}}
    - {name: read, type: read-config, properties: {name: to-read}}`,
	"read-object": `{name: read, type: read-object, properties: {apiVersion: v1, kind: ConfigMap, name: kube-root-ca.crt, namespace: community}}`,
	"request":     `{name: req, type: request, properties: {url: "$URL/users/octocat", method: GET}}`,
	"step-group":  `{name: group, type: step-group, subSteps: [{name: say, type: print-message-in-status, properties: {message: hi}}]}`,
	"suspend":     `{name: wait, type: suspend, properties: {duration: 1s}}`,
	"vela-cli":    `{name: cli, type: vela-cli, properties: {command: [vela, version]}}`,
}

// TestCommunityDefinitions measures how many of kubevela/workflow's chart
// definitions compile and run unchanged: set STEPFLOW_COMMUNITY_DIR to a
// directory of their YAML files (fetched from the upstream chart with the
// Helm namespace template replaced). It reports a table, asserting
// nothing: the definitions are not the project's. Skipped without the
// variable.
func TestCommunityDefinitions(t *testing.T) {
	dir := os.Getenv("STEPFLOW_COMMUNITY_DIR")
	if dir == "" {
		t.Skip("STEPFLOW_COMMUNITY_DIR is not set")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	ns := newNamespace(t, "community",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
		rbacv1.PolicyRule{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
		rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
	)
	// KubeVela's own objects: its Application kind (a minimal CRD, status
	// written by the test as KubeVela's controller would) and rights in
	// vela-system, where addon-operation and vela-cli run their Jobs.
	applyApplicationCRD(t)
	newNamespace(t, "vela-system")
	grantIn(t, "vela-system", ns)
	defer startApplicationController(t, ns)()
	startJobController(t, "vela-system", func(*batchv1.Job) bool { return true })
	var hits atomic.Int32
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `{"login": "octocat", "ok": true}`)
	}))
	defer srv.Close()
	defer kubelet.Start(env.Client, ns, 200*time.Millisecond)()
	startJobController(t, ns, func(*batchv1.Job) bool { return true })
	ev, err := eval.New(eval.Options{Ops: opset.Catalog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	compiled := map[string]string{}
	var names []string
	for _, f := range files {
		src, err := definition.FromFile(f)
		if err != nil {
			t.Logf("%s: %v", f, err)
			continue
		}
		names = append(names, src.Name)
		compiled[src.Name] = "ok"
		if err := ev.Check(src.Definition); err != nil {
			compiled[src.Name] = err.Error()
		}
		def := &v1beta1.WorkflowStepDefinition{}
		b, _ := os.ReadFile(f)
		if err := yaml.Unmarshal(b, def); err != nil {
			t.Fatal(err)
		}
		def.Namespace, def.ResourceVersion = ns, ""
		if err := env.Client.Create(ctx, def); err != nil {
			t.Fatal(err)
		}
		step, ok := communityRuns[src.Name]
		if only := os.Getenv("STEPFLOW_COMMUNITY_ONLY"); !ok || only != "" && !strings.Contains(","+only+",", ","+src.Name+",") {
			delete(communityRuns, src.Name)
			continue
		}
		runYAML(t, ns, fmt.Sprintf("metadata: {name: %s}\nspec:\n  workflowSpec:\n    steps:\n    - %s\n", src.Name, strings.ReplaceAll(step, "$URL", srv.URL)))
	}
	sort.Strings(names)
	compiles, runs := 0, 0
	var table []string
	for _, name := range names {
		if compiled[name] == "ok" {
			compiles++
		}
		outcome := ""
		if _, ok := communityRuns[name]; !ok {
			outcome = "no run"
		} else {
			var run v1alpha1.WorkflowRun
			deadline := time.Now().Add(45 * time.Second)
			for time.Now().Before(deadline) {
				err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &run)
				if err == nil && run.Status.Finished {
					break
				}
				if err != nil {
					outcome = err.Error()
				}
				time.Sleep(100 * time.Millisecond)
			}
			outcome += string(run.Status.Phase)
			if b, err := yaml.Marshal(run.Status); err == nil && os.Getenv("STEPFLOW_COMMUNITY_ONLY") != "" {
				t.Logf("%s status:\n%s", name, b)
			}
			if run.Status.Phase == v1alpha1.WorkflowRunSucceeded {
				runs++
			}
			for _, s := range run.Status.Steps {
				if s.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
					outcome += fmt.Sprintf(" [%s %s %s: %s]", s.Name, s.Phase, s.Reason, strings.ReplaceAll(s.Message, "\n", " "))
				}
			}
			if !run.Status.Finished {
				outcome = "not finished in 45s: " + outcome
			}
		}
		table = append(table, fmt.Sprintf("%-26s compile: %-4s run: %s", name, short(compiled[name]), outcome))
	}
	t.Logf("%d of %d compile, %d of %d runs succeed; local server hits: %d\n%s", compiles, len(names), runs, len(communityRuns), hits.Load(), strings.Join(table, "\n"))
}

func short(s string) string {
	if s == "ok" {
		return s
	}
	return "FAIL (" + s + ")"
}

// applyApplicationCRD installs a minimal core.oam.dev/v1beta1 Application
// CRD (any spec, a status subresource), as KubeVela core would.
func applyApplicationCRD(t *testing.T) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: applications.core.oam.dev}
spec:
  group: core.oam.dev
  scope: Namespaced
  names: {kind: Application, listKind: ApplicationList, plural: applications, singular: application}
  versions:
  - name: v1beta1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), crd); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("core.oam.dev/v1beta1")
		list.SetKind("ApplicationList")
		if err := env.Client.List(context.Background(), list); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the Application CRD was not served within 30s")
}

// startApplicationController reports every Application in ns running at
// its generation, as KubeVela's Application controller would.
func startApplicationController(t *testing.T, ns string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list := &unstructured.UnstructuredList{}
			list.SetAPIVersion("core.oam.dev/v1beta1")
			list.SetKind("ApplicationList")
			if err := env.Client.List(ctx, list, client.InNamespace(ns)); err == nil {
				for i := range list.Items {
					app := &list.Items[i]
					_ = unstructured.SetNestedField(app.Object, "running", "status", "status")
					_ = unstructured.SetNestedField(app.Object, app.GetGeneration(), "status", "observedGeneration")
					_ = env.Client.Status().Update(ctx, app)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

// grantIn lets the runner of runnerNS manage Jobs in ns.
func grantIn(t *testing.T, ns, runnerNS string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "community-runner"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "community-runner"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "community-runner"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: runnerNS, Name: tenancy.DefaultServiceAccount}}}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitAllowed(t, env.Client, "system:serviceaccount:"+runnerNS+":"+tenancy.DefaultServiceAccount,
		authorizationv1.ResourceAttributes{Namespace: ns, Verb: "patch", Group: "batch", Resource: "jobs"})
}
