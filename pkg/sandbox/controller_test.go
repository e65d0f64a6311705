package sandbox_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// The figure of issue 7, section 2: with both runaway definitions stored
// and used by runs, the controller stays small, the runaways fail their own
// steps, 20 good runs created at the same time all succeed, and neither the
// definitions nor the runs are compiled again in a loop, not even by a
// restarted controller.
func TestControllerWithRunaways(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and spends seconds of CPU per runaway")
	}
	scheme, err := api.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.WithScheme(scheme), testenv.WithCRDs())
	ctx := context.Background()
	ns := "figure"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"ok": true}`)
	}))
	defer srv.Close()
	defs := map[string]string{
		"repeat":        repeat,
		"comprehension": comprehension,
		"good": `import "vela/op"
req: op.#HTTPDo & {method: "POST", url: parameter.url}
parameter: url: string
`,
	}
	for name, tmpl := range defs {
		def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: tmpl}}
		if err := env.Client.Create(ctx, def); err != nil {
			t.Fatal(err)
		}
	}

	start := func() (*sandbox.Pool, func()) {
		skip := true
		mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := controller.Setup(mgr, controller.Options{SystemNamespace: ns, Metrics: prometheus.NewRegistry(),
			Sandbox: &sandbox.Options{Binary: os.Args[0], Env: []string{workerEnv + "=1"},
				Workers: 2, EvalTimeout: 3 * time.Second, MemoryLimit: 512 << 20, Stderr: os.Stderr}})
		if err != nil {
			t.Fatal(err)
		}
		pool := c.Pool
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = mgr.Start(cctx) }()
		stop := func() { cancel(); <-done; pool.Close() }
		t.Cleanup(func() {
			select {
			case <-done:
			default:
				stop()
			}
		})
		return pool, stop
	}
	pool, stop := start()
	peak := watchWorkers(t, pool)

	runYAML := func(name, typ string) {
		var run v1alpha1.WorkflowRun
		doc := fmt.Sprintf("metadata: {name: %s, namespace: %s}\nspec:\n  workflowSpec:\n    steps:\n    - {name: s, type: %s, properties: {url: %q}}\n",
			name, ns, typ, srv.URL)
		if err := yaml.UnmarshalStrict([]byte(doc), &run); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(ctx, &run); err != nil {
			t.Fatal(err)
		}
	}
	runYAML("bad-repeat", "repeat")
	runYAML("bad-comprehension", "comprehension")
	for i := 0; i < 20; i++ {
		runYAML(fmt.Sprintf("good-%02d", i), "good")
	}

	deadline := time.Now().Add(3 * time.Minute)
	finished := func(name string) *v1alpha1.WorkflowRun {
		for {
			var run v1alpha1.WorkflowRun
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &run); err == nil && run.Status.Finished {
				return &run
			}
			if time.Now().After(deadline) {
				b, _ := yaml.Marshal(run.Status)
				t.Fatalf("run %s did not finish; status:\n%s", name, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := 0; i < 20; i++ {
		run := finished(fmt.Sprintf("good-%02d", i))
		if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			b, _ := yaml.Marshal(run.Status)
			t.Errorf("good run %s: %s\n%s", run.Name, run.Status.Phase, b)
		}
	}
	for _, name := range []string{"bad-repeat", "bad-comprehension"} {
		run := finished(name)
		s := run.Status.Steps[0]
		if run.Status.Phase != v1alpha1.WorkflowRunFailed || (s.Reason != eval.ReasonTimeout && s.Reason != eval.ReasonMemory) {
			t.Errorf("runaway run %s: %s, step %s (%s): %s", name, run.Status.Phase, s.Phase, s.Reason, s.Message)
		}
		t.Logf("%s: %s: %s", name, s.Reason, s.Message)
	}
	if hits.Load() != 20 {
		t.Errorf("the good runs' POSTs reached the endpoint %d times, want 20", hits.Load())
	}
	for name := range defs {
		waitReady(t, env, ns, name, func(c *metav1.Condition) bool {
			if name == "good" {
				return c.Status == metav1.ConditionTrue
			}
			return c.Status == metav1.ConditionFalse && (c.Reason == eval.ReasonTimeout || c.Reason == eval.ReasonMemory)
		})
	}
	hwm := procStatus(t, "self", "VmHWM")
	st := pool.Stats()
	t.Logf("controller peak RSS %d MiB (VmRSS now %d MiB); workers' peak RSS %d MiB; workers started %d, killed %d, died %d",
		hwm>>20, procStatus(t, "self", "VmRSS")>>20, peak()>>20, st.Started, st.Killed, st.Died)
	if hwm > 300<<20 {
		t.Errorf("controller peak RSS %d MiB, want under 300", hwm>>20)
	}
	// Two runaway definitions and two runaway runs: at most four overruns.
	if st.Killed+st.Died > 4 {
		t.Errorf("%d workers were lost to two runaway definitions and their runs; want at most 4", st.Killed+st.Died)
	}

	// Nothing compiles the runaways again: not this controller, nor a new
	// one, which reads the definitions' status at start.
	time.Sleep(3 * time.Second)
	if again := pool.Stats(); again.Killed+again.Died != st.Killed+st.Died {
		t.Errorf("workers lost while idle: %+v after %+v", again, st)
	}
	stop()
	pool2, _ := start()
	time.Sleep(5 * time.Second)
	if st2 := pool2.Stats(); st2.Killed+st2.Died != 0 {
		t.Errorf("a restarted controller lost %d workers to the runaways again", st2.Killed+st2.Died)
	}
}

func waitReady(t *testing.T, env *testenv.Env, ns, name string, ok func(*metav1.Condition) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var def v1beta1.WorkflowStepDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &def); err == nil {
			if c := meta.FindStatusCondition(def.Status.Conditions, v1alpha1.ConditionReady); c != nil && ok(c) {
				t.Logf("definition %s: Ready=%s %s: %s", name, c.Status, c.Reason, c.Message)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("definition %s: conditions %+v", name, def.Status.Conditions)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
