package controller_test

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// rateLimitTestLabel marks the runs of a rate-limit test with its
// namespace: its controller sees only those.
const rateLimitTestLabel = "ratelimit-test"

// hitLog records when each path of an httptest server was hit.
type hitLog struct {
	mu   sync.Mutex
	hits map[string][]time.Time
}

func (h *hitLog) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	now := time.Now()
	h.mu.Lock()
	h.hits[r.URL.Path] = append(h.hits[r.URL.Path], now)
	h.mu.Unlock()
	w.WriteHeader(nethttp.StatusOK)
}

func (h *hitLog) of(path string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := append([]time.Time(nil), h.hits[path]...)
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// startRateLimitedController runs a controller with rate limits that sees
// only the runs of ns labelled by oneStepRun; stop ends it, as a killed
// controller.
func startRateLimitedController(t *testing.T, ns string, limits controller.RateLimitConfig) (stop func()) {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.WorkflowRun{}: {Label: labels.SelectorFromSet(labels.Set{rateLimitTestLabel: ns})},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{SystemNamespace: ns, Metrics: prometheus.NewRegistry(),
		Sandbox: testSandbox(), HTTP: testHTTP, Config: controller.Config{RateLimits: limits}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// oneStepRun creates a run whose one step, of type typ, POSTs to url.
func oneStepRun(t *testing.T, ns, name, typ, url string) {
	t.Helper()
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: %s, namespace: %s, labels: {%s: %s}}
spec:
  workflowSpec:
    steps:
    - {name: only, type: %s, properties: {url: %q}}
`, name, ns, rateLimitTestLabel, ns, typ, url))
}

// checkBucket checks starts (in time order) against a token bucket's
// bound: between any two of them, no more than burst + qps × the time
// between, with half an interval to spare for the delivery of the POSTs.
func checkBucket(t *testing.T, starts []time.Time, qps float64, burst int) {
	t.Helper()
	slack := time.Second / time.Duration(2*qps)
	for i := range starts {
		for j := i + burst; j < len(starts); j++ {
			// starts i..j are j-i+1 starts: burst of them free, the rest
			// one interval each.
			min := time.Duration(float64(j-i+1-burst)/qps*float64(time.Second)) - slack
			if d := starts[j].Sub(starts[i]); d < min {
				t.Errorf("starts %d to %d (%d) within %v, want at least %v apart", i, j, j-i+1, d.Round(time.Millisecond), min)
			}
		}
	}
}

// TestStepRateLimit: the real controller, limited to 2 starts per second
// (burst 1) for one step type. Six runs, each with one step of that type
// that POSTs to a receiver, are created at once, with three runs of a
// type without a limit. The receiver's clock shows the limited steps
// starting no faster than the limit, and the others not held back.
func TestStepRateLimit(t *testing.T) {
	const (
		qps   = 2.0
		burst = 1
		n     = 6
	)
	ns := namespace(t, "ratelimit")
	stepDef(t, ns, "limited-post", notify)
	stepDef(t, ns, "free-post", notify)
	log := &hitLog{hits: map[string][]time.Time{}}
	srv := httptest.NewServer(log)
	t.Cleanup(srv.Close)

	startRateLimitedController(t, ns, controller.RateLimitConfig{
		Steps: []controller.StepRateLimit{{Type: "limited-post", QPS: qps, Burst: burst}},
	})
	before := reconciles(t)
	run := func(name, typ, path string) { oneStepRun(t, ns, name, typ, srv.URL+path) }
	for i := 0; i < n; i++ {
		run(fmt.Sprintf("limited-%d", i), "limited-post", "/limited")
	}
	for i := 0; i < 3; i++ {
		run(fmt.Sprintf("free-%d", i), "free-post", "/free")
	}
	for i := 0; i < n; i++ {
		r := waitRun(t, ns, fmt.Sprintf("limited-%d", i), time.Minute, finishedRun)
		if r.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("run %s is %s: %s", r.Name, r.Status.Phase, r.Status.Message)
		}
	}
	for i := 0; i < 3; i++ {
		r := waitRun(t, ns, fmt.Sprintf("free-%d", i), time.Minute, finishedRun)
		if r.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("run %s is %s: %s", r.Name, r.Status.Phase, r.Status.Message)
		}
	}

	t.Logf("%.0f reconciles for %d runs", reconciles(t)-before, n+3)
	limited, free := log.of("/limited"), log.of("/free")
	if len(limited) != n || len(free) != 3 {
		t.Fatalf("receiver got %d limited and %d free POSTs, want %d and 3", len(limited), len(free), n)
	}
	span := limited[n-1].Sub(limited[0])
	t.Logf("%d limited starts over %v (%.2f per second after the first; limit %v, burst %d)",
		n, span.Round(time.Millisecond), float64(n-1)/span.Seconds(), qps, burst)
	// Within any second, at most qps + burst starts: the bucket's bound
	// over one second, with room for one start whose POST was late and
	// the next on time.
	for i := range limited {
		in := 0
		for _, h := range limited[i:] {
			if h.Sub(limited[i]) < time.Second {
				in++
			}
		}
		if max := int(qps) + burst; in > max {
			t.Errorf("%d limited starts within a second from %v, want at most %d", in, limited[i].Sub(limited[0]), max)
		}
	}
	checkBucket(t, limited, qps, burst)
	// The type without a limit is not held back behind the limited one.
	if last := free[len(free)-1]; !last.Before(limited[n-1]) {
		t.Errorf("the last unlimited step started %v after the last limited one", last.Sub(limited[n-1]))
	}
}

// TestStepRateLimitAcrossRestart: a controller whose bucket filled while
// idle lets a burst through; killed right after and started again, the new
// controller's bucket starts empty, so the starts on both sides of the
// restart stay within one token bucket's bound (a full bucket at start
// would let a second burst through at once).
func TestStepRateLimitAcrossRestart(t *testing.T) {
	const (
		qps   = 2.0
		burst = 4
	)
	ns := namespace(t, "ratelimit-restart")
	stepDef(t, ns, "limited-post", notify)
	log := &hitLog{hits: map[string][]time.Time{}}
	srv := httptest.NewServer(log)
	t.Cleanup(srv.Close)
	limits := controller.RateLimitConfig{Steps: []controller.StepRateLimit{{Type: "limited-post", QPS: qps, Burst: burst}}}

	stop := startRateLimitedController(t, ns, limits)
	time.Sleep(time.Duration(float64(burst) / qps * float64(time.Second))) // the bucket fills
	for i := 0; i < burst; i++ {
		oneStepRun(t, ns, fmt.Sprintf("before-%d", i), "limited-post", srv.URL+"/limited")
	}
	for i := 0; i < burst; i++ {
		waitRun(t, ns, fmt.Sprintf("before-%d", i), time.Minute, finishedRun)
	}
	stop()
	restarted := time.Now()
	for i := 0; i < burst; i++ {
		oneStepRun(t, ns, fmt.Sprintf("after-%d", i), "limited-post", srv.URL+"/limited")
	}
	startRateLimitedController(t, ns, limits)
	for i := 0; i < burst; i++ {
		if r := waitRun(t, ns, fmt.Sprintf("after-%d", i), time.Minute, finishedRun); r.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("run %s is %s: %s", r.Name, r.Status.Phase, r.Status.Message)
		}
	}
	hits := log.of("/limited")
	if len(hits) != 2*burst {
		t.Fatalf("receiver got %d POSTs, want %d", len(hits), 2*burst)
	}
	var rel []string
	for _, h := range hits {
		rel = append(rel, h.Sub(hits[0]).Round(10*time.Millisecond).String())
	}
	t.Logf("starts at %v; the controller was stopped at %v", rel, restarted.Sub(hits[0]).Round(10*time.Millisecond))
	checkBucket(t, hits, qps, burst)
}
