package compat_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// configSucceeded fails t unless run succeeded, listing its steps.
func configSucceeded(t *testing.T, run *v1alpha1.WorkflowRun) {
	t.Helper()
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		b, _ := yaml.Marshal(run.Status)
		t.Fatalf("run %s: phase %s, want succeeded; status:\n%s", run.Name, run.Status.Phase, b)
	}
}

func configGet(t *testing.T, obj client.Object, ns, name string) {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("%s/%s: %v", ns, name, err)
	}
}

// Modelled on KubeVela's examples/workflow-run/config/new-config-crud.yaml
// (and legacy-config-crud.yaml, which runs the same definitions): create a
// config, read it, list the configs of template "any" (none: the config has
// no template), delete it. The values read and the count listed are
// passed on through outputs and inputs into a ConfigMap, so the test sees
// what the steps saw; afterwards the config's Secret is gone.
func TestConfigCRUD(t *testing.T) {
	ns := newNamespace(t, "compat-config-crud")
	name := runYAML(t, ns, `
metadata: {name: new-config-crud}
spec:
  workflowSpec:
    steps:
    - name: create-config
      type: create-config
      properties:
        name: app-settings
        config: {host: postgres.default.svc, port: 5432, log_level: info}
    - name: read-config
      type: read-config
      properties: {name: app-settings}
      outputs:
      - {name: host, valueFrom: output.$returns.config.host}
      - {name: port, valueFrom: '"\(output.$returns.config.port)"'}
    - name: list-configs
      type: list-config
      properties: {template: any}
      outputs:
      - {name: listed, valueFrom: '"\(len(output.$returns.configs))"'}
    - name: seen
      type: export2config
      properties: {configName: seen-by-steps}
      inputs:
      - {from: host, parameterKey: data.host}
      - {from: port, parameterKey: data.port}
      - {from: listed, parameterKey: data.listed}
    - name: delete-config
      type: delete-config
      properties: {name: app-settings}
`)
	configSucceeded(t, waitFinished(t, ns, name))

	var seen corev1.ConfigMap
	configGet(t, &seen, ns, "seen-by-steps")
	if diff := cmp.Diff(map[string]string{"host": "postgres.default.svc", "port": "5432", "listed": "0"}, seen.Data); diff != "" {
		t.Errorf("what the steps read and listed (-want +got):\n%s", diff)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app-settings"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the config's Secret after delete-config: %v, want not found", err)
	}
}

// A config made by create-config is the Secret KubeVela's `vela config`
// writes, and list-config finds a config KubeVela wrote next to ours: a
// template (as `vela config-template apply` stores it) in the run's
// namespace, a config of it written as KubeVela does, then a run that
// creates a second config of the template and lists both.
func TestConfigWithKubeVela(t *testing.T) {
	ns := newNamespace(t, "compat-config-vela")
	ctx := context.Background()
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: config.TemplatePrefix + "helm-repository",
			Labels:      map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelScope: "project"},
			Annotations: map[string]string{config.AnnotationSensitive: "false"}},
			Data: map[string]string{"template": "metadata: name: \"helm-repository\"\ntemplate: parameter: url: string\n"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts-a",
			Labels: map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: "helm-repository", config.LabelScope: "project"},
			Annotations: map[string]string{config.AnnotationSensitive: "false", config.AnnotationTemplateNamespace: ns,
				config.AnnotationAlias: "A", config.AnnotationDescription: ""}},
			Type: "/helm-repository", Data: map[string][]byte{config.KeyProperties: []byte(`{"url":"https://a.example"}`)}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	name := runYAML(t, ns, `
metadata: {name: config-with-kubevela}
spec:
  workflowSpec:
    steps:
    - name: create
      type: create-config
      properties:
        name: charts-b
        template: `+ns+`/helm-repository
        config: {url: "https://b.example"}
    - name: list
      type: list-config
      properties: {template: helm-repository}
      outputs:
      - {name: first, valueFrom: 'output.$returns.configs[0].name'}
      - {name: firstAlias, valueFrom: 'output.$returns.configs[0].alias'}
      - {name: second, valueFrom: 'output.$returns.configs[1].config.url'}
      - {name: count, valueFrom: '"\(len(output.$returns.configs))"'}
    - name: seen
      type: export2config
      properties: {configName: listed}
      inputs:
      - {from: first, parameterKey: data.first}
      - {from: firstAlias, parameterKey: data.firstAlias}
      - {from: second, parameterKey: data.second}
      - {from: count, parameterKey: data.count}
`)
	configSucceeded(t, waitFinished(t, ns, name))

	var listed corev1.ConfigMap
	configGet(t, &listed, ns, "listed")
	if diff := cmp.Diff(map[string]string{"first": "charts-a", "firstAlias": "A", "second": "https://b.example", "count": "2"}, listed.Data); diff != "" {
		t.Errorf("what list-config returned (-want +got):\n%s", diff)
	}
	var s corev1.Secret
	configGet(t, &s, ns, "charts-b")
	want := map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: "helm-repository", config.LabelScope: "project"}
	if diff := cmp.Diff(want, s.Labels); diff != "" {
		t.Errorf("charts-b labels (-want +got):\n%s", diff)
	}
	if s.Type != "/helm-repository" || s.Annotations[config.AnnotationTemplateNamespace] != ns || s.Annotations[config.AnnotationSensitive] != "false" {
		t.Errorf("charts-b: type %q, annotations %v", s.Type, s.Annotations)
	}
	if got := string(s.Data[config.KeyProperties]); got != `{"url":"https://b.example"}` {
		t.Errorf("charts-b input-properties %s", got)
	}
}

// Modelled on KubeVela's examples/workflow-run/test-export2secret.yaml:
// a generic Secret, a docker-registry one and one in a named namespace.
func TestExport2Secret(t *testing.T) {
	ns := newNamespace(t, "compat-export2secret")
	name := runYAML(t, ns, `
metadata: {name: test-export2secret}
spec:
  workflowSpec:
    steps:
    - name: export-api-credentials
      type: export2secret
      properties:
        secretName: api-credentials
        data: {api-key: sk-1234567890abcdef, api-secret: secret-token-xyz, webhook-url: "https://api.example.com/webhook"}
    - name: export-docker-secret
      type: export2secret
      properties:
        secretName: docker-registry-secret
        kind: docker-registry
        dockerRegistry: {username: myusername, password: mypassword, server: "https://index.docker.io/v1/"}
    - name: export-db-credentials
      type: export2secret
      properties:
        secretName: database-creds
        namespace: `+ns+`
        data: {username: admin, password: super-secret-password, host: db.example.com, port: "5432"}
`)
	configSucceeded(t, waitFinished(t, ns, name))

	var api, docker, db corev1.Secret
	configGet(t, &api, ns, "api-credentials")
	configGet(t, &docker, ns, "docker-registry-secret")
	configGet(t, &db, ns, "database-creds")
	if api.Type != corev1.SecretTypeOpaque || string(api.Data["api-key"]) != "sk-1234567890abcdef" || len(api.Data) != 3 {
		t.Errorf("api-credentials: type %q, data %q", api.Type, api.Data)
	}
	if db.Type != corev1.SecretTypeOpaque || string(db.Data["port"]) != "5432" || len(db.Data) != 4 {
		t.Errorf("database-creds: type %q, data %q", db.Type, db.Data)
	}
	if docker.Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("docker-registry-secret type %q", docker.Type)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(docker.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatalf(".dockerconfigjson: %v (%q)", err, docker.Data)
	}
	a := cfg.Auths["https://index.docker.io/v1/"]
	if a.Username != "myusername" || a.Password != "mypassword" || a.Auth != base64.StdEncoding.EncodeToString([]byte("myusername:mypassword")) {
		t.Errorf(".dockerconfigjson auths: %+v", cfg.Auths)
	}
}

// Modelled on KubeVela's examples/workflow-run/test-export2config.yaml.
func TestExport2Config(t *testing.T) {
	ns := newNamespace(t, "compat-export2config")
	name := runYAML(t, ns, `
metadata: {name: test-export2config}
spec:
  workflowSpec:
    steps:
    - name: export-app-config
      type: export2config
      properties:
        configName: app-config
        data: {app-name: my-application, app-version: v1.0.0, environment: production, database-url: "postgres://db.example.com:5432/myapp"}
    - name: export-settings
      type: export2config
      properties:
        configName: app-settings
        namespace: `+ns+`
        data: {log-level: info, max-connections: "100", timeout: 30s}
`)
	configSucceeded(t, waitFinished(t, ns, name))
	var app, settings corev1.ConfigMap
	configGet(t, &app, ns, "app-config")
	configGet(t, &settings, ns, "app-settings")
	if diff := cmp.Diff(map[string]string{"app-name": "my-application", "app-version": "v1.0.0", "environment": "production",
		"database-url": "postgres://db.example.com:5432/myapp"}, app.Data); diff != "" {
		t.Errorf("app-config (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"log-level": "info", "max-connections": "100", "timeout": "30s"}, settings.Data); diff != "" {
		t.Errorf("app-settings (-want +got):\n%s", diff)
	}
}

// terraformProvider is a test fixture with apply-terraform-provider's
// constructs, written for this test: the flat op.#CreateConfig of a config
// named after the run and step from a template chosen by a parameter
// disjunction of definitions, then op.#Read of the Provider and an
// op.#ConditionalWait on its status.state that must read as "not yet"
// while the Provider has no status.
const terraformProvider = `
import "vela/op"

config: op.#CreateConfig & {
	name:      "\(context.name)-\(context.stepName)"
	namespace: context.namespace
	template:  "terraform-\(parameter.type)"
	config: {
		name: parameter.name
		if parameter.type == "alibaba" {
			ALICLOUD_ACCESS_KEY: parameter.accessKey
			ALICLOUD_SECRET_KEY: parameter.secretKey
			ALICLOUD_REGION:     parameter.region
		}
		if parameter.type == "aws" {
			AWS_ACCESS_KEY_ID:     parameter.accessKey
			AWS_SECRET_ACCESS_KEY: parameter.secretKey
			AWS_DEFAULT_REGION:    parameter.region
			AWS_SESSION_TOKEN:     parameter.token
		}
	}
}
provider: op.#Read & {
	value: {
		apiVersion: "terraform.core.oam.dev/v1beta1"
		kind:       "Provider"
		metadata: {name: parameter.name, namespace: context.namespace}
	}
}
ready: op.#ConditionalWait & {
	continue: provider.value.status != _|_ && provider.value.status.state == "ready"
}
#keys: {
	accessKey: string
	secretKey: string
	region:    string
}
#Alibaba: {
	#keys
	type: "alibaba"
	name: *"alibaba-provider" | string
}
#AWS: {
	#keys
	type:  "aws"
	token: *"" | string
	name:  *"aws-provider" | string
}
parameter: *#Alibaba | #AWS
`

var (
	providerCRD    sync.Once
	providerCRDErr error
	providerGVK    = schema.GroupVersionKind{Group: "terraform.core.oam.dev", Version: "v1beta1", Kind: "Provider"}
)

// Modelled on KubeVela's examples/workflow-run/apply-terraform-resource.yaml
// (its provider step), with the fixture above: the step writes the
// provider's config from template terraform-alibaba in vela-system, then
// waits while the Provider does not exist and while it is not ready. The
// test stands in for the Terraform addon (its template ConfigMap) and the
// Terraform controller (it creates the Provider and makes it ready:
// Stepflow does not render a template's outputs, which would create it).
func TestApplyTerraformProvider(t *testing.T) {
	ctx := context.Background()
	providerCRD.Do(func() {
		_, providerCRDErr = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join("testdata", "config-crds.yaml")}, ErrorIfPathMissing: true,
		})
	})
	if providerCRDErr != nil {
		t.Fatal(providerCRDErr)
	}
	ns := newNamespace(t, "compat-terraform-provider", rbacv1.PolicyRule{
		APIGroups: []string{"terraform.core.oam.dev"}, Resources: []string{"providers"}, Verbs: []string{"get", "list", "watch"},
	})
	configTemplateReadable(t, "vela-system", "terraform-alibaba", ns)

	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "compat-apply-terraform-provider"}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: terraformProvider}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	configDefinitionReady(t, ns, def.Name)

	name := runYAML(t, ns, `
metadata: {name: apply-terraform-resource}
spec:
  workflowSpec:
    steps:
    - name: provider
      type: compat-apply-terraform-provider
      properties: {type: alibaba, name: my-alibaba-provider, accessKey: AK, secretKey: SK, region: cn-hangzhou}
`)
	// No Provider yet: the step waits (it does not fail on the absent
	// status), and has written the config, which comes first.
	configStepWaiting(t, ns, name, "provider")
	secret := &corev1.Secret{}
	configGet(t, secret, ns, name+"-provider")
	wantLabels := map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: "terraform-alibaba", config.LabelScope: "system"}
	if diff := cmp.Diff(wantLabels, secret.Labels); diff != "" {
		t.Errorf("the provider config's labels (-want +got):\n%s", diff)
	}
	var props map[string]any
	if err := json.Unmarshal(secret.Data[config.KeyProperties], &props); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "my-alibaba-provider", "ALICLOUD_ACCESS_KEY": "AK", "ALICLOUD_SECRET_KEY": "SK",
		"ALICLOUD_REGION": "cn-hangzhou"}, props); diff != "" {
		t.Errorf("the provider config's properties (-want +got):\n%s", diff)
	}

	provider := &unstructured.Unstructured{}
	provider.SetGroupVersionKind(providerGVK)
	provider.SetNamespace(ns)
	provider.SetName("my-alibaba-provider")
	provider.Object["spec"] = map[string]any{"provider": "alibaba", "region": "cn-hangzhou"}
	if err := env.Client.Create(ctx, provider); err != nil {
		t.Fatal(err)
	}
	provider.Object["status"] = map[string]any{"state": "ready"}
	if err := env.Client.Status().Update(ctx, provider); err != nil {
		t.Fatal(err)
	}
	configSucceeded(t, waitFinished(t, ns, name))
}

// configTemplateReadable creates config template name in ns (once for the
// package) and lets the runner ServiceAccount of runNS read it.
func configTemplateReadable(t *testing.T, ns, name, runNS string) {
	t.Helper()
	ctx := context.Background()
	create := func(o client.Object) {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	cm := config.TemplatePrefix + name
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cm,
		Labels:      map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelScope: "system"},
		Annotations: map[string]string{config.AnnotationSensitive: "false"}},
		Data: map[string]string{"template": "metadata: name: \"" + name + "\"\ntemplate: parameter: {...}\n"}})
	create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cm}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{cm},
	}}})
	create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cm + "-" + runNS},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: cm},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: runNS, Name: tenancy.DefaultServiceAccount}}})
	user := "system:serviceaccount:" + runNS + ":" + tenancy.DefaultServiceAccount
	testenv.WaitAllowed(t, env.Client, user, authorizationv1.ResourceAttributes{
		Namespace: ns, Verb: "get", Resource: "configmaps", Name: cm,
	})
}

// configDefinitionReady waits until step definition ns/name is Ready.
func configDefinitionReady(t *testing.T, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var def v1beta1.WorkflowStepDefinition
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &def)
		for _, c := range def.Status.Conditions {
			if c.Type == v1beta1.ConditionReady && c.Status == metav1.ConditionTrue {
				return
			}
			if c.Type == v1beta1.ConditionReady && c.Status == metav1.ConditionFalse {
				t.Fatalf("definition %s is not Ready: %s", name, c.Message)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("definition %s not Ready after 30s (err %v)", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// configStepWaiting waits until step of run ns/name is running and waiting,
// failing t if the run finishes instead.
func configStepWaiting(t *testing.T, ns, name, step string) {
	t.Helper()
	waiting := func(r *v1alpha1.WorkflowRun) bool {
		for _, s := range r.Status.Steps {
			if s.Name == step && s.Phase == v1alpha1.WorkflowStepPhaseRunning && s.Reason == engine.ReasonWait {
				return true
			}
		}
		return r.Status.Finished
	}
	run := waitRun(t, ns, name, time.Minute, waiting)
	if run.Status.Finished {
		s := stepOf(t, run, step)
		t.Fatalf("the run finished (%s) while step %s should wait: %s %s", run.Status.Phase, step, s.Reason, s.Message)
	}
}
