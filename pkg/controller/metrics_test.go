package controller_test

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// The controller's metrics: op calls counted and timed by op and outcome
// (calls made, not replays from the journal), run durations, and gauges of
// the runs not finished by phase and of the definitions by readiness,
// read from the cache when scraped.
func TestMetrics(t *testing.T) {
	ns := namespace(t, "metrics")
	sys := namespace(t, "sys-metrics")
	reg := prometheus.NewRegistry()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{SystemNamespace: sys, Metrics: reg, Sandbox: testSandbox(), HTTP: testHTTP}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) { fmt.Fprint(w, `{}`) }))
	defer srv.Close()
	stepDef(t, sys, "notify", notify)
	stepDef(t, sys, "hold", "import \"vela/op\"\n\nwait: op.#Suspend & {message: \"approve\"}\n")
	stepDef(t, sys, "broken", "x: \n")
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: posts, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: one, type: notify, properties: {url: %q}}
    - {name: two, type: notify, properties: {url: %q}}
`, ns, srv.URL, srv.URL))
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: waits, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: approval, type: hold}
`, ns))
	waitRun(t, ns, "posts", 30*time.Second, finishedRun)
	waitRun(t, ns, "waits", 30*time.Second, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Phase == v1alpha1.WorkflowRunSuspending })

	// metric renders the family name as text, one metric per line.
	metric := func(name string) string {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				var v string
				switch {
				case m.GetCounter() != nil:
					v = fmt.Sprint(m.GetCounter().GetValue())
				case m.GetGauge() != nil:
					v = fmt.Sprint(m.GetGauge().GetValue())
				case m.GetHistogram() != nil:
					v = fmt.Sprintf("count %d", m.GetHistogram().GetSampleCount())
				}
				lines = append(lines, "{"+strings.Join(labels, ",")+"} "+v)
			}
		}
		return strings.Join(lines, "\n")
	}
	value := func(name, labels string) float64 {
		for _, l := range strings.Split(metric(name), "\n") {
			var v float64
			if rest, ok := strings.CutPrefix(l, labels+" "); ok {
				rest = strings.TrimPrefix(rest, "count ")
				if _, err := fmt.Sscan(rest, &v); err == nil {
					return v
				}
			}
		}
		return -1
	}
	// The two POSTs made are counted and timed. (At least: this
	// controller also goes on with runs other tests left unfinished in the
	// shared API server.)
	if n := value("stepflow_op_calls_total", "{op=http.do,outcome=ok}"); n < 2 {
		t.Errorf("stepflow_op_calls_total{op=http.do,outcome=ok} = %v, want at least 2:\n%s", n, metric("stepflow_op_calls_total"))
	}
	if n := value("stepflow_op_call_duration_seconds", "{op=http.do,outcome=ok}"); n < 2 {
		t.Errorf("stepflow_op_call_duration_seconds{op=http.do,outcome=ok} count = %v, want at least 2", n)
	}
	if n := value("stepflow_run_duration_seconds", "{phase=succeeded}"); n < 1 {
		t.Errorf("stepflow_run_duration_seconds{phase=succeeded} count = %v, want at least 1", n)
	}
	// The gauges: one run waits to be resumed; of the definitions, the
	// broken one is not Ready (at least: other tests' share the server).
	deadline := time.Now().Add(30 * time.Second)
	for value("stepflow_runs", "{phase=suspending}") < 1 || value("stepflow_step_definitions", "{ready=False}") < 1 ||
		value("stepflow_step_definitions", "{ready=True}") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("gauges did not get there:\n%s\n%s", metric("stepflow_runs"), metric("stepflow_step_definitions"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if age := value("stepflow_runs_oldest_age_seconds", "{phase=suspending}"); age <= 0 {
		t.Errorf("stepflow_runs_oldest_age_seconds{phase=suspending} = %v, want the waiting run's age", age)
	}
	// Deleted, the waiting run is no longer counted.
	before := value("stepflow_runs", "{phase=suspending}")
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "waits"}, &run); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), &run); err != nil {
		t.Fatal(err)
	}
	for value("stepflow_runs", "{phase=suspending}") != before-1 {
		if time.Now().After(deadline) {
			t.Fatalf("a deleted waiting run is still counted:\n%s", metric("stepflow_runs"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
