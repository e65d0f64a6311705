package compat_test

// The Application-shaped community step types: apply-app, read-app,
// addon-operation, vela-cli and apply-terraform-config. Each applies an
// object (a custom resource, or a Job) and waits on a status field that the
// object does not have when it is created: the runs here must wait on it,
// not fail, and finish once a test standing in for the object's controller
// (or the kubelet) writes it. The step types are test fixtures of ours
// written with the community templates' constructs (flat op.#Steps with
// conditional fields, yaml.Unmarshal of a ConfigMap key, op.#Message on a
// read's err, a Job named after context.stepSessionID, op.#Log over label
// selectors, $params with an if inside the wait); the custom resources are
// test-only kinds (testdata/app-crds.yaml).

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/kubelet"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// appFixtures are the step types of this file, by name.
var appFixtures = map[string]string{
	// apply-app: apply an Application given inline (data) or as YAML in a
	// ConfigMap key (ref), then wait until its controller reports it
	// running at its current generation.
	"compat-apply-app": `import (
	"vela/op"
	"encoding/yaml"
)

app: op.#Steps & {
	if parameter.data != _|_ {
		apply: op.#Apply & {value: parameter.data}
	}
	if parameter.ref != _|_ {
		source: op.#Read & {
			value: {
				apiVersion: "v1"
				kind:       "ConfigMap"
				metadata: {name: parameter.ref.name, namespace: parameter.ref.namespace}
			}
		}
		apply: op.#Apply & {value: yaml.Unmarshal(source.value.data[parameter.ref.key])}
	}
}
running: op.#ConditionalWait & {
	continue: app.apply.value.status.status == "running" && app.apply.value.status.observedGeneration == app.apply.value.metadata.generation
}
parameter: close({
	data?: {...}
}) | close({
	ref?: {
		name:      string
		namespace: *context.namespace | string
		key:       *"application" | string
	}
})
`,
	// read-app: read an Application; a missing one is not a failure but
	// the step's message, which a later step's if reads.
	"compat-read-app": `import (
	"strings"
	"vela/op"
)

got: op.#Read & {
	value: {
		apiVersion: "compat.stepflow.dev/v1"
		kind:       "Application"
		metadata: {name: parameter.name, namespace: parameter.namespace}
	}
}
say: op.#Steps & {
	if got.err != _|_ if strings.Contains(got.err, "not found") {
		missing: op.#Message & {message: "Application not found"}
	}
}
parameter: {
	name:      string
	namespace: *context.namespace | string
}
`,
	// addon-operation: a Job named after the step attempt, its pods'
	// logs collected by label, failed after three failed pods, done once
	// one succeeded.
	"compat-addon-operation": `import "vela/op"

job: op.#Apply & {
	value: {
		apiVersion: "batch/v1"
		kind:       "Job"
		metadata: {
			name:        context.name + "-" + context.stepSessionID
			labels: "addon.compat.stepflow.dev/run": context.name
			annotations: "compat.stepflow.dev/step": context.stepName
		}
		spec: {
			backoffLimit: 3
			template: {
				metadata: labels: {
					"compat.stepflow.dev/run":     context.name
					"compat.stepflow.dev/session": context.stepSessionID
				}
				spec: {
					containers: [{
						name:  parameter.addonName + "-job"
						image: parameter.image
						command: ["vela", "addon", parameter.operation, parameter.addonName] + parameter.args
					}]
					restartPolicy: "Never"
				}
			}
		}
	}
}
log: op.#Log & {
	source: resources: [{labelSelector: {
		"compat.stepflow.dev/run":     context.name
		"compat.stepflow.dev/session": context.stepSessionID
	}}]
}
fail: op.#Steps & {
	if job.value.status.failed != _|_ if job.value.status.failed > 2 {
		stop: op.#Fail & {message: "the addon job failed"}
	}
}
wait: op.#ConditionalWait & {
	continue: job.value.status.succeeded != _|_ && job.value.status.succeeded > 0
}
parameter: {
	addonName: string
	args: *[] | [...string]
	image:     *"registry.invalid/vela-cli:test" | string
	operation: *"enable" | "upgrade" | "disable"
}
`,
	// vela-cli: the same in the $params dialect, volumes de-duplicated
	// with nested comprehensions, and the wait's condition given only
	// once the status field exists.
	"compat-vela-cli": `import (
	"vela/builtin"
	"vela/kube"
	"vela/util"
)

mounts: [
	if parameter.storage.secret != _|_ for s in parameter.storage.secret {
		{name: "secret-" + s.name, mountPath: s.mountPath}
	},
]
volumes: [
	if parameter.storage.secret != _|_ for s in parameter.storage.secret {
		{name: "secret-" + s.name, secret: {secretName: s.secretName, defaultMode: s.defaultMode}}
	},
]
uniqueVolumes: [for v in [
	for i, a in volumes {
		for j, b in volumes if j < i && a.name == b.name {_dup: true}
		a
	},
] if v._dup == _|_ {v}]

job: kube.#Apply & {
	$params: value: {
		apiVersion: "batch/v1"
		kind:       "Job"
		metadata: name: "\(context.name)-\(context.stepName)-\(context.stepSessionID)"
		spec: {
			backoffLimit: 3
			template: {
				metadata: labels: "compat.stepflow.dev/step-name": "\(context.name)-\(context.stepName)"
				spec: {
					containers: [{
						name:         "cli"
						image:        parameter.image
						command:      parameter.command
						volumeMounts: mounts
					}]
					restartPolicy: "Never"
					volumes:       uniqueVolumes
				}
			}
		}
	}
}
log: util.#Log & {
	$params: source: resources: [{labelSelector: "compat.stepflow.dev/step-name": "\(context.name)-\(context.stepName)"}]
}
fail: {
	if job.$returns.value.status != _|_ if job.$returns.value.status.failed != _|_ {
		if job.$returns.value.status.failed > 2 {
			stop: builtin.#Fail & {$params: message: "the command failed"}
		}
	}
}
wait: builtin.#ConditionalWait & {
	if job.$returns.value.status != _|_ if job.$returns.value.status.succeeded != _|_ {
		$params: continue: job.$returns.value.status.succeeded > 0
	}
}
parameter: {
	command: [...string]
	image: *"registry.invalid/vela-cli:test" | string
	storage?: secret?: [...{
		name:        string
		mountPath:   string
		defaultMode: *420 | int
		secretName:  string
	}]
}
`,
	// An app's endpoints (vela/ql, flat) and the registered clusters
	// (vela/multicluster), reported in the step's message.
	"compat-query-app": `import (
	"strings"
	"vela/multicluster"
	"vela/op"
	"vela/ql"
)

endpoints: ql.#CollectServiceEndpoints & {app: {name: parameter.app, namespace: context.namespace}}
clusters: multicluster.#ListClusters
let E = endpoints.list
report: op.#Message & {
	message: "\(len(E)) endpoint(s): \(strings.Join([for e in E {"\(e.endpoint.host):\(e.endpoint.port) (\(e.component))"}], ", ")); clusters: \(strings.Join(clusters.$returns.outputs.clusters, ", "))"
}
parameter: app: string
`,
	// KubeVela's op.#ApplyApplication: every component of the run's
	// application, rendered, applied and waited on until healthy.
	"compat-apply-application": `import "vela/op"

app: op.#ApplyApplication
`,
	// The app's resources (vela/query), reported in the step's message.
	"compat-app-resources": `import (
	"strings"
	"vela/op"
	"vela/query"
)

list: query.#ListResourcesInApp & {$params: app: name: parameter.app}
let L = list.$returns.list
report: op.#Message & {
	message: strings.Join([for r in L {"\(r.cluster)/\(r.component): \(r.object.kind) \(r.object.metadata.name)"}], ", ")
}
parameter: app: string
`,
	// apply-terraform-config: a Configuration whose source is one of two
	// closed shapes, optional fields copied when given, and a wait on a
	// nested status field guarded at each level.
	"compat-apply-terraform-config": `import "vela/op"

apply: op.#Apply & {
	value: {
		apiVersion: "compat.stepflow.dev/v1"
		kind:       "Configuration"
		metadata: name: "\(context.name)-\(context.stepName)"
		spec: {
			deleteResource: parameter.deleteResource
			variable:       parameter.variable
			if parameter.source.hcl != _|_ {hcl: parameter.source.hcl}
			if parameter.source.remote != _|_ {remote: parameter.source.remote}
			if parameter.source.path != _|_ {path: parameter.source.path}
			if parameter.providerRef != _|_ {providerRef: parameter.providerRef}
		}
	}
}
check: op.#ConditionalWait & {
	continue: apply.value.status != _|_ && apply.value.status.apply != _|_ && apply.value.status.apply.state == "Available"
}
parameter: {
	source: close({
		hcl: string
	}) | close({
		remote: *"https://example.invalid/modules.git" | string
		path?:  string
	})
	deleteResource: *true | bool
	variable: {...}
	providerRef?: {
		name:      string
		namespace: *context.namespace | string
	}
}
`,
}

var (
	appGVK    = schema.GroupVersionKind{Group: "compat.stepflow.dev", Version: "v1", Kind: "Application"}
	configGVK = schema.GroupVersionKind{Group: "compat.stepflow.dev", Version: "v1", Kind: "Configuration"}

	appCRDs     sync.Once
	appCRDsErr  error
	appCRDRules = []rbacv1.PolicyRule{{
		APIGroups: []string{"compat.stepflow.dev"}, Resources: []string{"applications", "configurations"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch"},
	}}
	appJobRules = []rbacv1.PolicyRule{{
		APIGroups: []string{"batch"}, Resources: []string{"jobs"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch"},
	}}
)

// appSetUp installs the test kinds (once) and the fixtures named into ns,
// and waits until each fixture is Ready, so a run never finds its step
// type missing.
func appSetUp(t *testing.T, ns string, fixtures ...string) {
	t.Helper()
	appCRDs.Do(func() {
		_, appCRDsErr = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join("testdata", "app-crds.yaml")}, ErrorIfPathMissing: true,
		})
	})
	if appCRDsErr != nil {
		t.Fatalf("installing the test kinds: %v", appCRDsErr)
	}
	ctx := context.Background()
	for _, name := range fixtures {
		def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: appFixtures[name]}}
		if err := env.Client.Create(ctx, def); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range fixtures {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var def v1beta1.WorkflowStepDefinition
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &def)
			c := metaCondition(def.Status.Conditions, v1beta1.ConditionReady)
			if err == nil && c != nil && c.Status == metav1.ConditionTrue {
				break
			}
			if err == nil && c != nil && c.Status == metav1.ConditionFalse {
				t.Fatalf("fixture %s is not Ready: %s", name, c.Message)
			}
			if time.Now().After(deadline) {
				t.Fatalf("fixture %s not Ready after 30s (err %v)", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func metaCondition(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

// appWaitingOn waits until step of run ns/name waits (reason Wait) and
// returns its message.
func appWaitingOn(t *testing.T, ns, name, step string) string {
	t.Helper()
	run := waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool {
		if r.Status.Finished {
			return true
		}
		for _, s := range r.Status.Steps {
			if s.Name == step && s.Phase == v1alpha1.WorkflowStepPhaseRunning && s.Reason == engine.ReasonWait {
				return true
			}
		}
		return false
	})
	s := stepOf(t, run, step)
	if run.Status.Finished || s.Reason != engine.ReasonWait {
		t.Fatalf("step %s: phase %s reason %s (%s), want it waiting", step, s.Phase, s.Reason, s.Message)
	}
	return s.Message
}

// appSetStatus writes status into the object of kind gvk ns/name, as its
// controller would, and returns the object as it was before.
func appSetStatus(t *testing.T, gvk schema.GroupVersionKind, ns, name string, status func(obj *unstructured.Unstructured) map[string]any) *unstructured.Unstructured {
	t.Helper()
	ctx := context.Background()
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	before := obj.DeepCopy()
	if _, has := obj.Object["status"]; has {
		t.Fatalf("%s %s/%s already has a status: %v", gvk.Kind, ns, name, obj.Object["status"])
	}
	obj.Object["status"] = status(obj)
	if err := env.Client.Status().Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
	return before
}

func appSucceeded(t *testing.T, run *v1alpha1.WorkflowRun) {
	t.Helper()
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		var steps []string
		for _, s := range run.Status.Steps {
			steps = append(steps, s.Name+": "+string(s.Phase)+" "+s.Reason+" "+s.Message)
		}
		t.Fatalf("run %s: phase %s, want succeeded; steps:\n%s", run.Name, run.Status.Phase, strings.Join(steps, "\n"))
	}
}

// appConfigMap creates ConfigMap name in ns holding an Application of the
// test kind, named app, under key application.
func appConfigMap(t *testing.T, ns, name, app string) {
	t.Helper()
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data": map[string]any{"application": `apiVersion: compat.stepflow.dev/v1
kind: Application
metadata:
  name: ` + app + `
spec:
  components:
  - {name: express-server2, type: webservice, properties: {image: crccheck/hello-world}}
`},
	}}
	if err := env.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
}

// appRunning is the status KubeVela's Application controller writes once
// the Application runs at its generation.
func appRunning(obj *unstructured.Unstructured) map[string]any {
	return map[string]any{"status": "running", "observedGeneration": obj.GetGeneration()}
}

// Modelled on KubeVela's examples/workflow-run/apply-applications.yaml:
// read-app finds no Application, so the apply-app its message guards
// applies one from a ConfigMap key (yaml.Unmarshal) and waits until it is
// running at its generation.
func TestApplyAppFromConfigMap(t *testing.T) {
	ns := newNamespace(t, "compat-apply-app-ref", appCRDRules...)
	appSetUp(t, ns, "compat-read-app", "compat-apply-app")
	appConfigMap(t, ns, "my-app", "webservice-app2")
	name := runYAML(t, ns, `
metadata: {name: apply-applications}
spec:
  workflowSpec:
    steps:
    - name: check-app-exist
      type: compat-read-app
      properties: {name: webservice-app2}
    - name: apply-app2
      type: compat-apply-app
      if: status["check-app-exist"].message == "Application not found"
      properties:
        ref: {name: my-app, key: application}
`)
	appWaitingOn(t, ns, name, "apply-app2")
	appSetStatus(t, appGVK, ns, "webservice-app2", appRunning)
	run := waitFinished(t, ns, name)
	appSucceeded(t, run)
	if s := stepOf(t, run, "check-app-exist"); s.Message != "Application not found" {
		t.Fatalf("check-app-exist message %q", s.Message)
	}
}

// The same example's first apply-app: the Application given inline
// (value: parameter.data) is applied, and the step waits until it is
// running at its generation (metadata.generation, which the parameter
// data lacks, is read before the apply has run).
func TestApplyAppInline(t *testing.T) {
	ns := newNamespace(t, "compat-apply-app-data", appCRDRules...)
	appSetUp(t, ns, "compat-apply-app")
	name := runYAML(t, ns, `
metadata: {name: apply-inline}
spec:
  workflowSpec:
    steps:
    - name: apply-app1
      type: compat-apply-app
      properties:
        data:
          apiVersion: compat.stepflow.dev/v1
          kind: Application
          metadata: {name: webservice-app}
          spec:
            components:
            - {name: express-server, type: webservice, properties: {image: crccheck/hello-world}}
`)
	appWaitingOn(t, ns, name, "apply-app1")
	appSetStatus(t, appGVK, ns, "webservice-app", appRunning)
	appSucceeded(t, waitFinished(t, ns, name))
}

// A read-app of an Application that exists says nothing, and the apply-app
// its message guards is skipped.
func TestReadAppFound(t *testing.T) {
	ns := newNamespace(t, "compat-read-app", appCRDRules...)
	appSetUp(t, ns, "compat-read-app", "compat-apply-app")
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(appGVK)
	obj.SetNamespace(ns)
	obj.SetName("there")
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	name := runYAML(t, ns, `
metadata: {name: read-found}
spec:
  workflowSpec:
    steps:
    - {name: check, type: compat-read-app, properties: {name: there}}
    - name: apply
      type: compat-apply-app
      if: status["check"].message == "Application not found"
      properties: {data: {apiVersion: compat.stepflow.dev/v1, kind: Application, metadata: {name: other}}}
`)
	run := waitFinished(t, ns, name)
	appSucceeded(t, run)
	if s := stepOf(t, run, "check"); s.Message != "" {
		t.Fatalf("check message %q, want none", s.Message)
	}
	if s := stepOf(t, run, "apply"); s.Phase != v1alpha1.WorkflowStepPhaseSkipped {
		t.Fatalf("apply phase %s, want skipped", s.Phase)
	}
}

// appJobOf finds the one Job in ns with label key=value.
func appJobOf(t *testing.T, ns, key, value string) *batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	if err := env.Client.List(context.Background(), &jobs, client.InNamespace(ns), client.MatchingLabels{key: value}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Fatalf("%d Jobs labelled %s=%s, want 1", len(jobs.Items), key, value)
	}
	return &jobs.Items[0]
}

// appJobDone writes the status of a Job whose one pod succeeded, as the
// Job controller would.
func appJobDone(t *testing.T, job *batchv1.Job) {
	t.Helper()
	if job.Status.Succeeded != 0 || job.Status.StartTime != nil {
		t.Fatalf("Job %s already has a status: %+v", job.Name, job.Status)
	}
	start := metav1.NewTime(time.Now().Add(-time.Second).Truncate(time.Second))
	done := metav1.NewTime(time.Now().Truncate(time.Second))
	job.Status = batchv1.JobStatus{
		StartTime: &start, CompletionTime: &done, Succeeded: 1,
		Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: "True", LastTransitionTime: done},
			{Type: batchv1.JobComplete, Status: "True", LastTransitionTime: done},
		},
	}
	if err := env.Client.Status().Update(context.Background(), job); err != nil {
		t.Fatal(err)
	}
}

// Modelled on KubeVela's addon-operation (examples/initialize-env.md): a
// step whose name is no DNS label ("Enable Prism") names its Job after
// context.stepSessionID, waits while the Job has no status.succeeded, and
// succeeds once the Job controller reports a succeeded pod.
func TestAddonOperation(t *testing.T) {
	ns := newNamespace(t, "compat-addon-operation", appJobRules...)
	appSetUp(t, ns, "compat-addon-operation")
	name := runYAML(t, ns, `
metadata: {name: addons}
spec:
  workflowSpec:
    steps:
    - name: Enable Prism
      type: compat-addon-operation
      properties: {addonName: vela-prism, args: ["--override-definitions"]}
`)
	appWaitingOn(t, ns, name, "Enable Prism")
	job := appJobOf(t, ns, "addon.compat.stepflow.dev/run", name)
	if !strings.HasPrefix(job.Name, name+"-") {
		t.Fatalf("Job %s is not named after the run and the step attempt", job.Name)
	}
	if got := job.Spec.Template.Spec.Containers[0].Command; strings.Join(got, " ") != "vela addon enable vela-prism --override-definitions" {
		t.Fatalf("command %q", got)
	}
	appJobDone(t, job)
	appSucceeded(t, waitFinished(t, ns, name))
}

// Modelled on KubeVela's examples/workflow-run/test-vela-cli.yaml: two
// vela-cli steps, each a Job of its own waited on until it succeeded; the
// second mounts a Secret named twice, once as a volume.
func TestVelaCLI(t *testing.T) {
	ns := newNamespace(t, "compat-vela-cli", appJobRules...)
	appSetUp(t, ns, "compat-vela-cli")
	name := runYAML(t, ns, `
metadata: {name: test-vela-cli}
spec:
  workflowSpec:
    steps:
    - name: check-version
      type: compat-vela-cli
      properties: {command: [vela, version]}
    - name: add-cluster
      type: compat-vela-cli
      properties:
        command: [vela, cluster, join, /kubeconfig/ack/KUBECONFIG, --name=ack]
        storage:
          secret:
          - {name: kubeconfig, secretName: my-terraform-secret, mountPath: /kubeconfig/ack}
          - {name: kubeconfig, secretName: my-terraform-secret, mountPath: /kubeconfig/again}
`)
	for _, step := range []string{"check-version", "add-cluster"} {
		appWaitingOn(t, ns, name, step)
		job := appJobOf(t, ns, "compat.stepflow.dev/step-name", name+"-"+step)
		if step == "add-cluster" {
			spec := job.Spec.Template.Spec
			if len(spec.Volumes) != 1 || len(spec.Containers[0].VolumeMounts) != 2 {
				t.Fatalf("volumes %+v, mounts %+v: want 1 and 2", spec.Volumes, spec.Containers[0].VolumeMounts)
			}
		}
		appJobDone(t, job)
	}
	appSucceeded(t, waitFinished(t, ns, name))
}

// Modelled on KubeVela's examples/workflow-run/apply-terraform-resource.yaml
// (its configuration step): the Configuration is applied, the step waits
// while it has no status.apply.state, and succeeds once it is Available.
func TestApplyTerraformConfig(t *testing.T) {
	ns := newNamespace(t, "compat-terraform", appCRDRules...)
	appSetUp(t, ns, "compat-apply-terraform-config")
	name := runYAML(t, ns, `
metadata: {name: apply-terraform-resource}
spec:
  workflowSpec:
    steps:
    - name: configuration
      type: compat-apply-terraform-config
      properties:
        source: {path: alibaba/cs/dedicated-kubernetes, remote: https://example.invalid/terraform-modules}
        providerRef: {name: my-alibaba-provider}
        variable: {name: regular-check-ack, k8s_worker_number: 2, vswitch_cidrs: [10.1.0.0/16]}
`)
	appWaitingOn(t, ns, name, "configuration")
	before := appSetStatus(t, configGVK, ns, name+"-configuration", func(*unstructured.Unstructured) map[string]any {
		return map[string]any{"apply": map[string]any{"state": "Available"}}
	})
	spec, _, _ := unstructured.NestedMap(before.Object, "spec")
	if spec["path"] != "alibaba/cs/dedicated-kubernetes" || spec["deleteResource"] != true {
		t.Fatalf("the Configuration's spec: %v", spec)
	}
	if ref, _, _ := unstructured.NestedString(spec, "providerRef", "namespace"); ref != ns {
		t.Fatalf("providerRef.namespace %q, want the run's namespace", ref)
	}
	appSucceeded(t, waitFinished(t, ns, name))
}

// The query and multicluster ops as the controller wires them: a step lists
// the endpoints of an app's Services (objects labelled with its app id)
// and the registered clusters (the cluster Secrets of the system
// namespace, which the runner may list there), acting as the run's
// ServiceAccount.
func TestQueryAnApp(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "compat-query-app")
	appSetUp(t, ns, "compat-query-app")
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "compat-query-list-clusters"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "compat-query-list-clusters"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: tenancy.DefaultServiceAccount}}}
	edge := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "compat-edge",
		Labels: map[string]string{clusters.CredentialTypeLabel: string(clusters.ServiceAccountToken)}},
		StringData: map[string]string{"endpoint": "https://edge.invalid:6443", "token": "t"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web",
		Labels: map[string]string{"stepflow.dev/app-id": "shop", "app.oam.dev/component": "frontend"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other",
		Labels: map[string]string{"stepflow.dev/app-id": "another"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "other"}, Ports: []corev1.ServicePort{{Port: 8080}}}}
	for _, obj := range []client.Object{role, binding, edge, svc, other} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitAllowed(t, env.Client, "system:serviceaccount:"+ns+":"+tenancy.DefaultServiceAccount,
		authorizationv1.ResourceAttributes{Namespace: systemNamespace, Verb: "list", Resource: "secrets"})
	name := runYAML(t, ns, `
metadata: {name: query}
spec:
  workflowSpec:
    steps:
    - {name: endpoints, type: compat-query-app, properties: {app: shop}}
`)
	run := waitFinished(t, ns, name)
	appSucceeded(t, run)
	want := "1 endpoint(s): web." + ns + ":80 (frontend); clusters: compat-edge"
	if s := stepOf(t, run, "endpoints"); s.Message != want {
		t.Fatalf("message %q, want %q", s.Message, want)
	}
}

// KubeVela's op.#ApplyApplication over Stepflow's application model: a run
// launched from an ApplicationConfiguration (app.Run) applies every
// component with op.#ApplyApplication (rendered through the shipped
// K8S_MICROSERVICE ComponentDefinition of the system namespace, applied as
// the run's ServiceAccount) and waits while the Deployment has not rolled
// out; once a stand-in kubelet reports it, the run goes on, and a step
// lists the app's resources with vela/query.
func TestApplyApplicationOp(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "compat-apply-application")
	appSetUp(t, ns, "compat-apply-application", "compat-app-resources")
	doc := `apiVersion: core.oam.dev/v1alpha2
kind: ApplicationConfiguration
metadata:
  annotations: {appId: shop}
spec:
  components:
  - revisionName: "K8S_MICROSERVICE|web|_"
    parameterValues:
    - {name: image, value: "nginx:1.25", toFieldPaths: [spec.image]}
  workflow:
    steps:
    - {name: apply, type: compat-apply-application}
    - {name: resources, type: compat-app-resources, properties: {app: shop}}
`
	if _, err := app.Run(ctx, env.Client, app.Request{Configuration: []byte(doc), Category: "DEPLOY", Namespace: ns, Name: "shop-v1"}); err != nil {
		t.Fatal(err)
	}
	appWaitingOn(t, ns, "shop-v1", "apply")
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Labels["stepflow.dev/app-id"] != "shop" || d.Labels["app.oam.dev/component"] != "web" || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.25" {
		t.Fatalf("the Deployment: labels %v, image %s", d.Labels, d.Spec.Template.Spec.Containers[0].Image)
	}
	stop := kubelet.Start(env.Client, ns, 100*time.Millisecond)
	defer stop()
	run := waitFinished(t, ns, "shop-v1")
	appSucceeded(t, run)
	if s := stepOf(t, run, "resources"); s.Message != "local/web: Deployment web" {
		t.Fatalf("resources message %q", s.Message)
	}
}
