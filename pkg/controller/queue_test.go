package controller_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// queueTestLabel marks the runs of a queue test with its namespace.
const queueTestLabel = "queue-test"

// startQueueController runs a controller with queue caps that sees only
// the runs queuedRun made in namespace ns (their definitions live there
// too), so runs left unfinished by other tests take no slot. stop ends it, as a killed controller.
func startQueueController(t *testing.T, ns string, q controller.QueueConfig) (*controller.Controller, func()) {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.WorkflowRun{}: {Label: labels.SelectorFromSet(labels.Set{queueTestLabel: ns})},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := controller.Setup(mgr, controller.Options{SystemNamespace: ns, Metrics: prometheus.NewRegistry(),
		Sandbox: testSandbox(), HTTP: testHTTP, Config: controller.Config{Queues: q}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return c, stop
}

// queuedRun creates a run in queue q ("" for none) with one step of type
// typ (and properties, as a YAML flow mapping, if any).
func queuedRun(t *testing.T, ns, name, q, typ string, properties ...string) {
	t.Helper()
	queue := ""
	if q != "" {
		queue = "queue: " + q
	}
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: %s, namespace: %s, labels: {%s: %s}}
spec:
  %s
  workflowSpec:
    steps:
    - {name: only, type: %s, properties: {%s}}
`, name, ns, queueTestLabel, ns, queue, typ, strings.Join(properties, ", ")))
}

func started(r *v1alpha1.WorkflowRun) bool { return !r.Status.StartTime.IsZero() }

func suspended(r *v1alpha1.WorkflowRun) bool {
	return r.Status.Phase == v1alpha1.WorkflowRunSuspending
}

// waitingAt is a run that waits at position pos of queue q and shows it.
func waitingAt(q string, pos int32) func(*v1alpha1.WorkflowRun) bool {
	return func(r *v1alpha1.WorkflowRun) bool {
		return !started(r) && r.Status.Queue != nil && r.Status.Queue.Name == q && r.Status.Queue.Position == pos
	}
}

func resumeRun(t *testing.T, ns, name string) {
	t.Helper()
	operate(t, ns, name, func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "") })
}

// runningNow lists the runs of ns that started and have not finished.
func runningNow(t *testing.T, ns string) []v1alpha1.WorkflowRun {
	t.Helper()
	var list v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []v1alpha1.WorkflowRun
	for _, r := range list.Items {
		if started(&r) && !r.Status.Finished {
			out = append(out, r)
		}
	}
	return out
}

// TestQueueOrder: one slot (a suspended run holds it), four runs waiting
// behind the run holding it, three in queue a and one, created last, in
// queue b. Each waiting run shows its queue and position. Under FIFO they
// start in creation order, b last; under FAIR, b's lone run starts next,
// as the slot was a's. After each start the runs still waiting show their
// new places. Each admitted run suspends, holding the slot until
// resumed, so the order is exact.
func TestQueueOrder(t *testing.T) {
	for _, tc := range []struct {
		strategy controller.QueueStrategy
		want     []string
	}{
		{controller.QueueFIFO, []string{"a1", "a2", "a3", "b1"}},
		{controller.QueueFAIR, []string{"b1", "a1", "a2", "a3"}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			ns := namespace(t, "queue-order-"+strings.ToLower(string(tc.strategy)))
			shippedStepDef(t, ns, "suspend")
			c, _ := startQueueController(t, ns, controller.QueueConfig{Strategy: tc.strategy, MaxRunning: 1, SuspendedHoldSlots: true})
			queuedRun(t, ns, "blocker", "a", "suspend")
			waitRun(t, ns, "blocker", 30*time.Second, suspended)
			for _, name := range []string{"a1", "a2", "a3", "b1"} {
				queuedRun(t, ns, name, name[:1], "suspend")
			}
			waitRun(t, ns, "a1", 20*time.Second, waitingAt("a", 1))
			waitRun(t, ns, "a2", 20*time.Second, waitingAt("a", 2))
			b1 := waitRun(t, ns, "b1", 20*time.Second, waitingAt("b", 1))
			a3 := waitRun(t, ns, "a3", 20*time.Second, waitingAt("a", 3))
			ready := meta.FindStatusCondition(a3.Status.Conditions, v1alpha1.ConditionReady)
			if a3.Status.Phase != v1alpha1.WorkflowRunInitializing || a3.Status.Message != "waiting in queue a at position 3" ||
				ready == nil || ready.Status != "False" || ready.Reason != controller.ReasonQueued || a3.Status.Queue.Since == nil {
				t.Fatalf("a3 waiting: phase %q, message %q, Ready %+v, queue %+v; want initializing, waiting in queue a at position 3, False/Queued, since set",
					a3.Status.Phase, a3.Status.Message, ready, a3.Status.Queue)
			}
			if b1.Status.Message != "waiting in queue b at position 1" {
				t.Fatalf("b1 says %q", b1.Status.Message)
			}
			if got := testutil.ToFloat64(c.Metrics.QueueWaiting.WithLabelValues("a")); got != 3 {
				t.Fatalf("stepflow_queue_waiting_runs{queue=a} = %v, want 3", got)
			}

			holder, order := "blocker", []string{}
			for i := range tc.want {
				resumeRun(t, ns, holder)
				waitRun(t, ns, holder, 30*time.Second, finishedRun)
				var next []v1alpha1.WorkflowRun
				eventually(t, 30*time.Second, "the next run to start", func() bool {
					next = runningNow(t, ns)
					return len(next) > 0
				})
				if len(next) != 1 {
					t.Fatalf("with maxRunning 1, %d runs running at once", len(next))
				}
				holder = next[0].Name
				order = append(order, holder)
				waitRun(t, ns, holder, 30*time.Second, suspended)
				if holder != tc.want[i] {
					continue // reported below
				}
				// The runs still waiting show their new places.
				pos := map[string]int32{}
				for _, r := range tc.want[i+1:] {
					pos[r[:1]]++
					waitRun(t, ns, r, 20*time.Second, waitingAt(r[:1], pos[r[:1]]))
				}
			}
			if fmt.Sprint(order) != fmt.Sprint(tc.want) {
				t.Fatalf("%s: started in order %v, want %v", tc.strategy, order, tc.want)
			}
			resumeRun(t, ns, holder)
			got := waitRun(t, ns, holder, 30*time.Second, finishedRun)
			if q := got.Status.Queue; q == nil || q.Admitted == nil || q.Since == nil || q.Position != 0 || q.Admitted.Before(q.Since) {
				t.Fatalf("%s after it ran: status.queue %+v, want admitted after since, no position", holder, q)
			}
		})
	}
}

// TestQueueCaps: 200 runs over four queues, all created before the
// controller starts, with maxRunning 8 in total and 3 per queue (2 for
// queue q0). Sampled throughout from the API server, the runs started and
// not finished never exceed a cap; all finish. Each run suspends for
// 100ms, holding its slot (suspendedHoldSlots).
func TestQueueCaps(t *testing.T) {
	ns := namespace(t, "queue-caps")
	shippedStepDef(t, ns, "suspend")
	cfg := controller.QueueConfig{Strategy: controller.QueueFAIR, MaxRunning: 8, MaxRunningPerQueue: 3,
		Queues: []controller.QueueLimit{{Name: "q0", MaxRunning: 2}}, SuspendedHoldSlots: true}
	const n = 200
	for i := range n {
		// Each run holds its slot for 100ms (a suspend that resumes by
		// itself), long enough to be seen running.
		queuedRun(t, ns, fmt.Sprintf("r%03d", i), fmt.Sprintf("q%d", i%4), "suspend", "duration: 100ms")
	}
	// All 200 wait when the controller starts.
	c, _ := startQueueController(t, ns, cfg)
	var (
		maxTotal int
		maxQueue = map[string]int{}
		samples  int
	)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list v1alpha1.WorkflowRunList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		samples++
		total, finished, perQueue := 0, 0, map[string]int{}
		for _, r := range list.Items {
			switch {
			case r.Status.Finished:
				finished++
			case started(&r):
				total++
				perQueue[r.Spec.Queue]++
			}
		}
		maxTotal = max(maxTotal, total)
		for q, k := range perQueue {
			maxQueue[q] = max(maxQueue[q], k)
		}
		if finished == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d runs finished in 5 minutes", finished, n)
		}

		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d samples; most running at once: %d in total, by queue %v", samples, maxTotal, maxQueue)
	if maxTotal > 8 {
		t.Errorf("%d runs running at once, cap 8", maxTotal)
	}
	for q, k := range maxQueue {
		limit := 3
		if q == "q0" {
			limit = 2
		}
		if k > limit {
			t.Errorf("queue %s: %d runs running at once, cap %d", q, k, limit)
		}
	}
	if maxTotal < 2 {
		t.Errorf("at most %d run ran at once: the caps were not used", maxTotal)
	}
	if got := testutil.CollectAndCount(c.Metrics.QueueWait); got != 4 {
		t.Errorf("stepflow_queue_wait_seconds has %d series, want one per queue", got)
	}
	eventually(t, 20*time.Second, "stepflow_queue_running_runs to drop to 0 in every queue", func() bool {
		for q := range maxQueue {
			if testutil.ToFloat64(c.Metrics.QueueRunning.WithLabelValues(q)) != 0 {
				return false
			}
		}
		return true
	})
}

// reconciles is how many reconciles of runs controller-runtime counted in
// this process (the test's controller is the only one running).
func reconciles(t *testing.T) float64 {
	t.Helper()
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "workflowrun" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestQueueWakesOnFinish: a waiting run that is terminated ends at once;
// a run of a Workflow waits in the Workflow's queue; a run waiting for the one slot is not looked at while it waits (no reconcile at all over two seconds: nothing polls),
// survives a controller restart still waiting (the started run holding
// the slot is counted again before anything is admitted), and starts once
// the run holding the slot finishes, woken by that finish.
func TestQueueWakesOnFinish(t *testing.T) {
	ns := namespace(t, "queue-wake")
	shippedStepDef(t, ns, "suspend")
	stepDef(t, ns, "noop", `parameter: {}`)
	cfg := controller.QueueConfig{MaxRunning: 1, SuspendedHoldSlots: true}
	_, stop := startQueueController(t, ns, cfg)
	queuedRun(t, ns, "holder", "", "suspend")
	waitRun(t, ns, "holder", 30*time.Second, suspended)
	queuedRun(t, ns, "waiter", "", "noop")
	queuedRun(t, ns, "x-doomed", "", "noop")
	waitRun(t, ns, "x-doomed", 20*time.Second, waitingAt(controller.DefaultQueue, 2))
	// A waiting run that is terminated ends without a slot, and leaves
	// its place to the runs behind it.
	operate(t, ns, "x-doomed", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Terminate(st, "", time.Now()) })
	if got := waitRun(t, ns, "x-doomed", 20*time.Second, finishedRun); got.Status.Phase != v1alpha1.WorkflowRunTerminated {
		t.Fatalf("a waiting run terminated: phase %s, want terminated", got.Status.Phase)
	}
	waiting := waitRun(t, ns, "waiter", 20*time.Second, waitingAt(controller.DefaultQueue, 1))
	// A run of a Workflow waits in the Workflow's queue.
	applyYAML(t, &v1alpha1.Workflow{}, fmt.Sprintf(`
metadata: {name: nightly, namespace: %s}
queue: nightly
steps:
- {name: only, type: noop}
`, ns))
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: y-nightly, namespace: %s, labels: {%s: %s}}
spec: {workflowRef: nightly}
`, ns, queueTestLabel, ns))
	waitRun(t, ns, "y-nightly", 20*time.Second, waitingAt("nightly", 1))

	// The reconcile that wrote the position may be followed by one more
	// (its own write's event can beat the note that it was its own); let
	// that settle, then expect none.
	before := reconciles(t)
	eventually(t, 20*time.Second, "reconciles to settle", func() bool {
		time.Sleep(500 * time.Millisecond)
		now := reconciles(t)
		settled := now == before
		before = now
		return settled
	})
	time.Sleep(2 * time.Second)
	if after := reconciles(t); after != before {
		t.Fatalf("%v reconciles while one run was suspended and one waited: something polls", after-before)
	}

	stop()
	c, _ := startQueueController(t, ns, cfg)
	var now v1alpha1.WorkflowRun
	get := func() {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "waiter"}, &now); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "the restarted controller to count the waiting run, or start it", func() bool {
		get()
		return started(&now) || testutil.ToFloat64(c.Metrics.QueueWaiting.WithLabelValues(controller.DefaultQueue)) == 1
	})
	time.Sleep(500 * time.Millisecond) // an admission, if one were wrongly made, would be written by now
	get()
	if started(&now) || now.ResourceVersion != waiting.ResourceVersion {
		t.Fatalf("after the restart the waiting run was written (resourceVersion %s, was %s; started %v) while the slot was held",
			now.ResourceVersion, waiting.ResourceVersion, started(&now))
	}
	if got := testutil.ToFloat64(c.Metrics.QueueRunning.WithLabelValues(controller.DefaultQueue)); got != 1 {
		t.Fatalf("after the restart stepflow_queue_running_runs{queue=default} = %v, want 1 (the suspended holder)", got)
	}

	resumeRun(t, ns, "holder")
	holder := waitRun(t, ns, "holder", 30*time.Second, finishedRun)
	got := waitRun(t, ns, "waiter", 30*time.Second, finishedRun)
	if got.Status.Phase != v1alpha1.WorkflowRunSucceeded || got.Status.Queue == nil || got.Status.Queue.Admitted == nil ||
		got.Status.Queue.Admitted.Before(&holder.Status.EndTime) {
		t.Fatalf("waiter: phase %s, queue %+v; holder ended %s: want succeeded, admitted after that", got.Status.Phase, got.Status.Queue, holder.Status.EndTime)
	}
	if got := waitRun(t, ns, "y-nightly", 30*time.Second, finishedRun); got.Status.Phase != v1alpha1.WorkflowRunSucceeded || got.Status.Queue.Name != "nightly" {
		t.Fatalf("y-nightly: phase %s, queue %+v; want succeeded, from queue nightly", got.Status.Phase, got.Status.Queue)
	}
	if n := testutil.CollectAndCount(c.Metrics.QueueWait); n != 2 {
		t.Fatalf("stepflow_queue_wait_seconds: %d series, want 2 (queues default and nightly)", n)
	}
}
