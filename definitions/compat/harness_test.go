// Package compat_test is the community compatibility suite: for each
// community step definition (KubeVela Workflow's chart and examples), a run
// of Stepflow's own definition of that name, or of a test fixture using the
// same constructs, modelled on the upstream example and run by the real
// controller against a real API server.
//
// The harness starts one envtest control plane and one controller for the
// package (evaluating in sandbox worker processes, as the binary does),
// installs every shipped definition (definitions/*.cue and components)
// into the system namespace, and gives each test a namespace whose runner
// ServiceAccount has the chart's default rights (rbac.opsRules in
// charts/stepflow/values.yaml): a test that needs more passes extra rules,
// so the suite shows which rights each definition needs beyond the
// defaults. Outside services are local fakes: httptest servers counting
// hits, a local SMTP server, a Prometheus-shaped HTTP API.
package compat_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// systemNamespace holds the shipped definitions every run sees.
const systemNamespace = "stepflow-system"

// workerEnv makes the test binary an evaluator worker process.
const workerEnv = "STEPFLOW_COMPAT_TEST_WORKER"

var (
	env *testenv.Env
	// chartRules are the chart's default runner rights (rbac.opsRules).
	chartRules []rbacv1.PolicyRule
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := sandbox.Serve(os.Stdin, os.Stdout, sandbox.WorkerOptions{Ops: opset.Catalog()}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	rules, err := readChartRules(filepath.Join("..", "..", "charts", "stepflow", "values.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	chartRules = rules
	// The controller's logs are not the suite's output (runs' statuses
	// are); without a logger controller-runtime warns with a stack.
	ctrl.SetLogger(logr.Discard())
	scheme, err := api.NewScheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var stopEnv func()
	env, stopEnv = testenv.StartMain(testenv.WithScheme(scheme), testenv.WithCRDs())
	defer stopEnv()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := definition.InstallDir(ctx, env.Client, "..", systemNamespace); err != nil {
		fmt.Fprintf(os.Stderr, "installing the shipped definitions: %v\n", err)
		return 2
	}
	stopCtrl, err := startController(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the controller: %v\n", err)
		return 2
	}
	defer stopCtrl()
	return m.Run()
}

// readChartRules reads rbac.opsRules from the chart's values.
func readChartRules(path string) ([]rbacv1.PolicyRule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var values struct {
		RBAC struct {
			OpsRules []rbacv1.PolicyRule `json:"opsRules"`
		} `json:"rbac"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(values.RBAC.OpsRules) == 0 {
		return nil, fmt.Errorf("%s: no rbac.opsRules", path)
	}
	return values.RBAC.OpsRules, nil
}

// startController runs the controller as the binary wires it, with
// loopback HTTP allowed for the tests' local fakes.
func startController(ctx context.Context) (stop func(), err error) {
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: ptr(true)}})
	if err != nil {
		return nil, err
	}
	_, err = controller.Setup(mgr, controller.Options{
		SystemNamespace: systemNamespace,
		Metrics:         prometheus.NewRegistry(),
		// A minute's CUE bound: make test runs many packages at once on two
		// cores (see pkg/controller's testSandbox).
		Sandbox: &sandbox.Options{Binary: os.Args[0], Env: []string{workerEnv + "=1"}, Workers: 2,
			Stderr: os.Stderr, EvalTimeout: time.Minute},
		HTTP: controller.HTTPOptions{DenyAPIEndpoints: true, Fence: netfence.Config{
			DenyLoopback: true,
			AllowCIDRs:   []string{"127.0.0.0/8", "::1"},
		}},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	return func() { cancel(); <-done }, nil
}

func ptr[T any](v T) *T { return &v }

// newNamespace creates namespace name whose default runner ServiceAccount
// has the chart's default rights plus extra, and waits until the API
// server's authorizer grants them (a run started earlier would have its
// first op denied for good).
func newNamespace(t *testing.T, name string, extra ...rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctx, ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	rules := append(append([]rbacv1.PolicyRule{}, chartRules...), extra...)
	if err := tenancy.SetUpRunner(ctx, env.Client, name, tenancy.DefaultServiceAccount, rules); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + name + ":" + tenancy.DefaultServiceAccount
	for _, r := range rules {
		if len(r.Resources) == 0 || len(r.Verbs) == 0 || r.Verbs[0] == "*" {
			continue
		}
		group := ""
		if len(r.APIGroups) > 0 {
			group = r.APIGroups[0]
		}
		testenv.WaitAllowed(t, env.Client, user, authorizationv1.ResourceAttributes{
			Namespace: name, Verb: r.Verbs[len(r.Verbs)-1], Group: group, Resource: r.Resources[0],
		})
	}
	return name
}

// runYAML creates the WorkflowRun doc (YAML, without a namespace) in ns
// and returns its name.
func runYAML(t *testing.T, ns, doc string) string {
	t.Helper()
	var run v1alpha1.WorkflowRun
	if err := yaml.UnmarshalStrict([]byte(doc), &run); err != nil {
		t.Fatalf("the run: %v", err)
	}
	if run.APIVersion == "" {
		run.APIVersion, run.Kind = "core.oam.dev/v1alpha1", "WorkflowRun"
	}
	run.Namespace = ns
	if err := env.Client.Create(context.Background(), &run); err != nil {
		t.Fatal(err)
	}
	return run.Name
}

// waitRun waits up to timeout for ok to hold on run ns/name and returns
// it; it fails the test with the run's status otherwise.
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

// waitFinished waits up to a minute for run ns/name to finish.
func waitFinished(t *testing.T, ns, name string) *v1alpha1.WorkflowRun {
	t.Helper()
	return waitRun(t, ns, name, time.Minute, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Finished })
}

// stepOf returns the status of step name (searching groups' sub-steps too),
// or fails the test.
func stepOf(t *testing.T, run *v1alpha1.WorkflowRun, name string) v1alpha1.StepStatus {
	t.Helper()
	for _, s := range run.Status.Steps {
		if s.Name == name {
			return s.StepStatus
		}
		for _, sub := range s.SubStepsStatus {
			if sub.Name == name {
				return sub
			}
		}
	}
	b, _ := yaml.Marshal(run.Status)
	t.Fatalf("run %s has no step %q; status:\n%s", run.Name, name, b)
	return v1alpha1.StepStatus{}
}
