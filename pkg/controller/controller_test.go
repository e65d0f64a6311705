package controller_test

import (
	"context"
	"fmt"
	"k8s.io/client-go/util/retry"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

var env *testenv.Env

// workerEnv makes the test binary an evaluator worker process: the
// controllers of these tests evaluate in a sandbox.Pool, as the binary's
// does, with this test binary as the worker.
const workerEnv = "STEPFLOW_CONTROLLER_TEST_WORKER"

// testSandbox is the pool the tests' controllers evaluate in. Its CUE time
// bound is a minute, not the default 10s: `make test` runs many packages
// at once on two cores, and a worker starved of CPU for 10s while it
// evaluated failed runs with EvalTimeout (TestRunsLeaveNoMemoryBehind).
// The bound itself is tested in pkg/sandbox.
func testSandbox() *sandbox.Options {
	return &sandbox.Options{Binary: os.Args[0], Env: []string{workerEnv + "=1"}, Workers: 2, Stderr: os.Stderr,
		EvalTimeout: time.Minute}
}

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := sandbox.Serve(os.Stdin, os.Stdout, sandbox.WorkerOptions{Ops: opset.Catalog()}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The scheme the binary uses.
	scheme, err := api.NewScheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if os.Getenv("STEPFLOW_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	}
	var stop func()
	env, stop = testenv.StartMain(testenv.WithScheme(scheme), testenv.WithCRDs())
	code := m.Run()
	stop()
	os.Exit(code)
}

// startController runs the reconcilers in a manager against the test API
// server until the test ends.
func startController(t *testing.T, systemNS string) *controller.Controller {
	t.Helper()
	c, _ := startStoppableController(t, systemNS)
	return c
}

// startStoppableController also returns a stop that ends the manager, as a
// killed controller would stop.
func startStoppableController(t *testing.T, systemNS string) (*controller.Controller, func()) {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := controller.Setup(mgr, controller.Options{SystemNamespace: systemNS, Metrics: prometheus.NewRegistry(), Sandbox: testSandbox(), HTTP: testHTTP})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

// namespace creates namespace name with the default runner ServiceAccount
// its runs act as, granted runnerRules there.
func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	if err := tenancy.SetUpRunner(context.Background(), env.Client, name, tenancy.DefaultServiceAccount, runnerRules); err != nil {
		t.Fatal(err)
	}
	waitRunnerRights(t, name)
	// envtest runs no namespace controller: without this, the runs a test
	// leaves (waiting, or hundreds of them) would be reconciled by every
	// later test's controller, which watches all namespaces, and slow it.
	t.Cleanup(func() {
		if err := env.Client.DeleteAllOf(context.Background(), &v1alpha1.WorkflowRun{}, client.InNamespace(name)); err != nil {
			t.Errorf("deleting the runs of namespace %s: %v", name, err)
		}
	})
	return name
}

// waitRunnerRights waits until the API server's authorizer lets the
// runner of ns create ConfigMaps there. A RoleBinding takes effect only
// once the authorizer's own cache has it; a run started before that fails
// its first apply for good (a denial is permanent), which on a loaded
// machine made tests that expect every run to get going flaky.
func waitRunnerRights(t *testing.T, ns string) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":" + tenancy.DefaultServiceAccount
	deadline := time.Now().Add(20 * time.Second)
	for {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "configmaps"},
		}}
		if err := env.Client.Create(context.Background(), review); err == nil && review.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner of %s was not allowed to create ConfigMaps within 20s", ns)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runnerRules are what the tests' runs may do in their own namespace: the
// chart's default rules for stepflow-runner.
var runnerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
}

func applyYAML(t *testing.T, obj client.Object, doc string) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func stepDef(t *testing.T, ns, name, template string) {
	t.Helper()
	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: template}}
	if err := env.Client.Create(context.Background(), def); err != nil {
		t.Fatal(err)
	}
}

// shippedStepDef installs the shipped step definition name
// (definitions/NAME.cue) into ns.
func shippedStepDef(t *testing.T, ns, name string) {
	t.Helper()
	src, err := definition.FromFile(filepath.Join("..", "..", "definitions", name+".cue"))
	if err != nil {
		t.Fatal(err)
	}
	stepDef(t, ns, name, src.Template)
}

func waitRun(t *testing.T, ns, name string, timeout time.Duration, ok func(*v1alpha1.WorkflowRun) bool) *v1alpha1.WorkflowRun {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var run v1alpha1.WorkflowRun
	for time.Now().Before(deadline) {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &run); err == nil && ok(&run) {
			return &run
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := yaml.Marshal(run.Status)
	t.Fatalf("run %s/%s did not get there in %s; status:\n%s", ns, name, timeout, b)
	return nil
}

func finishedRun(r *v1alpha1.WorkflowRun) bool { return r.Status.Finished }

const applyObject = `import "vela/kube"

apply: kube.#Apply & {$params: value: parameter.value}
parameter: value: {...}
`

const notify = `import (
	"vela/op"
	"encoding/json"
)

post: op.#HTTPPost & {
	url: parameter.url
	request: body: json.Marshal({step: context.stepSessionID})
}
parameter: url: string
`

func TestRunToCompletion(t *testing.T) {
	ns := namespace(t, "complete")
	sys := namespace(t, "sys-complete")
	metrics := startController(t, sys).Metrics
	var posts atomic.Int32
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		posts.Add(1)
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	stepDef(t, sys, "apply-object", applyObject)
	stepDef(t, sys, "notify", notify)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: deploy, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: config
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: app-config}, data: {k: v}}
    - name: notify
      type: notify
      properties: {url: %q}
`, ns, srv.URL))
	run := waitRun(t, ns, "deploy", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("phase %s: %s", run.Status.Phase, run.Status.Message)
	}
	if !meta.IsStatusConditionTrue(run.Status.Conditions, v1alpha1.ConditionSucceeded) {
		t.Errorf("conditions = %+v", run.Status.Conditions)
	}
	if posts.Load() != 1 {
		t.Errorf("POST hits = %d, want 1", posts.Load())
	}
	if n := testutil.ToFloat64(metrics.RunsFinished.WithLabelValues("succeeded")); n != 1 {
		t.Errorf("stepflow_runs_finished_total{phase=succeeded} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(metrics.StepTransitions.WithLabelValues("succeeded", "notify")); n != 1 {
		t.Errorf("stepflow_step_transitions_total{phase=succeeded,type=notify} = %v, want 1", n)
	}
	if run.Status.ContextBackend == nil {
		t.Fatalf("no context backend recorded for a run with a journaled POST")
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: run.Status.ContextBackend.Name}, &cm); err != nil {
		t.Fatal(err)
	}
	if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != run.UID || !strings.Contains(cm.Data["journal"], "/post") {
		t.Errorf("journal ConfigMap = %+v", cm)
	}
}

func TestDefinitionLookupOrderAndBadDefinition(t *testing.T) {
	ns := namespace(t, "lookup")
	sys := namespace(t, "sys-lookup")
	startController(t, sys)
	stepDef(t, sys, "greet", "import \"vela/op\"\nm: op.#Message & {message: \"from system\"}\n")
	stepDef(t, ns, "greet", "import \"vela/op\"\nm: op.#Message & {message: \"from namespace\"}\n")
	stepDef(t, sys, "only-system", "import \"vela/op\"\nm: op.#Message & {message: \"system only\"}\n")
	stepDef(t, ns, "broken", "import \"vela/op\"\n\nm: op.#Message & {message: 1 + }\n")
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: order, namespace: %s}
spec:
  mode: {steps: DAG}
  workflowSpec:
    steps:
    - {name: a, type: greet}
    - {name: b, type: only-system}
    - {name: c, type: broken}
`, ns))
	run := waitRun(t, ns, "order", 30*time.Second, finishedRun)
	msgs := map[string]string{}
	for _, s := range run.Status.Steps {
		msgs[s.Name] = string(s.Phase) + ": " + s.Message
	}
	if msgs["a"] != "succeeded: from namespace" || msgs["b"] != "succeeded: system only" ||
		!strings.HasPrefix(msgs["c"], "failed: ") || !strings.Contains(msgs["c"], "broken.cue:3:") {
		t.Errorf("steps = %v", msgs)
	}
	// The broken definition reports its error on its own status.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var def v1beta1.WorkflowStepDefinition
		_ = env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "broken"}, &def)
		c := meta.FindStatusCondition(def.Status.Conditions, "Ready")
		if c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "broken.cue:3:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("definition conditions = %+v", def.Status.Conditions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTimedSuspendWakesExactly(t *testing.T) {
	ns := namespace(t, "timed")
	shippedStepDef(t, ns, "suspend")
	startController(t, "vela-system")
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: pause, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: pause, type: suspend, properties: {duration: 2s}}
`, ns))
	start := time.Now()
	run := waitRun(t, ns, "pause", 20*time.Second, finishedRun)
	took := time.Since(start)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded || took < 1500*time.Millisecond || took > 5*time.Second {
		t.Fatalf("phase %s after %s", run.Status.Phase, took)
	}
}

func TestWorkflowRefMissing(t *testing.T) {
	ns := namespace(t, "ref")
	startController(t, "vela-system")
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: byref, namespace: %s}
spec: {workflowRef: nowhere}
`, ns))
	run := waitRun(t, ns, "byref", 20*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunFailed || !strings.Contains(run.Status.Message, "nowhere") {
		t.Fatalf("phase %s: %s", run.Status.Phase, run.Status.Message)
	}
}

const applyAndWait = `import (
	"vela/kube"
	"vela/builtin"
)

apply: kube.#Apply & {$params: value: parameter.value}
wait: builtin.#ConditionalWait & {
	$params: {
		continue: apply.$returns.value.status.readyReplicas == apply.$returns.value.spec.replicas
		message:  "waiting for \(parameter.value.metadata.name) to be ready"
	}
}
parameter: value: {...}
`

// A step waiting for an object is woken by the object's watch event, not by
// its next poll (which by then is seconds away).
func TestWaitIsWokenByWatch(t *testing.T) {
	ns := namespace(t, "woken")
	startController(t, ns)
	stepDef(t, ns, "apply-and-wait", applyAndWait)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: rollout, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: web
      type: apply-and-wait
      properties:
        value:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: web}
          spec:
            replicas: 1
            selector: {matchLabels: {app: web}}
            template:
              metadata: {labels: {app: web}}
              spec: {containers: [{name: web, image: nginx}]}
`, ns))
	waitRun(t, ns, "rollout", 20*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return len(r.Status.Steps) == 1 && r.Status.Steps[0].Reason == "Wait"
	})
	// Let the poll interval grow (a quarter of the time waited).
	time.Sleep(12 * time.Second)
	var dep appsv1.Deployment
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	dep.Status.Replicas, dep.Status.ReadyReplicas = 1, 1
	if err := env.Client.Status().Update(context.Background(), &dep); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	run := waitRun(t, ns, "rollout", 10*time.Second, finishedRun)
	if took := time.Since(ready); run.Status.Phase != v1alpha1.WorkflowRunSucceeded || took > time.Second {
		t.Fatalf("phase %s %s after the object became ready; want succeeded within 1s", run.Status.Phase, took)
	}
}

// A controller stopped mid-run and started again finishes the run without
// repeating a journaled effect.
func TestControllerRestartMidRun(t *testing.T) {
	ns := namespace(t, "restart")
	var posts atomic.Int32
	keys := map[string]bool{}
	var mu sync.Mutex
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		posts.Add(1)
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	_, stopFirst := startStoppableController(t, ns)
	stepDef(t, ns, "notify", notify)
	// One step: POST, then a timed suspend. After the restart the step is
	// evaluated again; the POST must come from the journal ConfigMap.
	stepDef(t, ns, "notify-then-pause", `import (
	"vela/op"
	"encoding/json"
)

post: op.#HTTPPost & {
	url: parameter.url
	request: body: json.Marshal({step: context.stepSessionID})
}
pause: op.#Suspend & {duration: "3s"}
parameter: url: string
`)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: resilient, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: before, type: notify-then-pause, properties: {url: %q}}
    - {name: after, type: notify, properties: {url: %q}}
`, ns, srv.URL+"/before", srv.URL+"/after"))
	waitRun(t, ns, "resilient", 20*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return len(r.Status.Steps) == 1 && r.Status.Steps[0].Phase == v1alpha1.WorkflowStepPhaseSuspending
	})
	stopFirst()
	startController(t, ns)
	run := waitRun(t, ns, "resilient", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("phase %s: %s", run.Status.Phase, run.Status.Message)
	}
	if posts.Load() != 2 || len(keys) != 2 {
		t.Errorf("POSTs = %d with %d keys, want 2 and 2 (one per notify step)", posts.Load(), len(keys))
	}
}

// Changing a definition's template changes what the next run does: the
// compiled template is looked up by content, so a new generation compiles
// anew.
func TestDefinitionChangeIsPickedUp(t *testing.T) {
	ns := namespace(t, "defchange")
	startController(t, ns)
	stepDef(t, ns, "say", "import \"vela/op\"\nm: op.#Message & {message: \"first\"}\n")
	runOnce := func(name string) string {
		applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf("metadata: {name: %s, namespace: %s}\nspec:\n  workflowSpec:\n    steps:\n    - {name: s, type: say}\n", name, ns))
		return waitRun(t, ns, name, 20*time.Second, finishedRun).Status.Steps[0].Message
	}
	if got := runOnce("one"); got != "first" {
		t.Fatalf("first run says %q", got)
	}
	// The controller writes the definition's status meanwhile: an update
	// may conflict, as a kubectl edit would, and is tried again.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var def v1beta1.WorkflowStepDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "say"}, &def); err != nil {
			return err
		}
		def.Spec.Schematic.CUE.Template = "import \"vela/op\"\nm: op.#Message & {message: \"second\"}\n"
		return env.Client.Update(context.Background(), &def)
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ""
		name := fmt.Sprintf("two-%d", time.Now().UnixNano()%100000)
		if got = runOnce(name); got == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the update a run still says %q", got)
		}
	}
}

// `kubectl wait --for=condition=Succeeded` works on a run.
func TestKubectlWait(t *testing.T) {
	ns := namespace(t, "kwait")
	startController(t, ns)
	stepDef(t, ns, "say", "import \"vela/op\"\nm: op.#Message & {message: \"hi\"}\n")
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf("metadata: {name: w, namespace: %s}\nspec:\n  workflowSpec:\n    steps:\n    - {name: s, type: say}\n", ns))
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kc, "-n", ns,
		"wait", "--for=condition=Succeeded", "wr/w", "--timeout=30s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "condition met") {
		t.Fatalf("kubectl wait: %v\n%s", err, out)
	}
	out, err = exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kc, "-n", ns, "get", "wr").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "succeeded") {
		t.Fatalf("kubectl get wr: %v\n%s", err, out)
	}
}

// The reconciler asks to be called again exactly when a timed suspend ends,
// by the injected clock; it does not poll.
func TestRequeueAtExactWakeUp(t *testing.T) {
	ns := namespace(t, "exact")
	shippedStepDef(t, ns, "suspend")
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: timer, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: pause, type: suspend, properties: {duration: 90s}}
`, ns))
	reg := op.NewRegistry().Add(builtin.New())
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 12, 0, 0, 500e6, time.UTC)
	r := &controller.RunReconciler{Client: env.Client, Evaluator: ev, Ops: op.Direct,
		Definitions: definition.Cluster{Reader: env.Client}, Now: func() time.Time { return now }}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "timer"}}
	res, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// 90s from 12:00:00.5, rounded up to the whole second the status keeps.
	if want := 90*time.Second + 500*time.Millisecond; res.RequeueAfter != want {
		t.Fatalf("RequeueAfter = %s, want %s", res.RequeueAfter, want)
	}
	now = now.Add(30 * time.Second)
	if res, err = r.Reconcile(context.Background(), req); err != nil || res.RequeueAfter != 60*time.Second+500*time.Millisecond {
		t.Fatalf("after 30s: RequeueAfter = %s (%v)", res.RequeueAfter, err)
	}
	now = now.Add(61 * time.Second)
	if res, err = r.Reconcile(context.Background(), req); err != nil || res.RequeueAfter != 0 {
		t.Fatalf("after the suspend ended: RequeueAfter = %s (%v)", res.RequeueAfter, err)
	}
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), req.NamespacedName, &run); err != nil || run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("phase %s (%v)", run.Status.Phase, err)
	}
}
