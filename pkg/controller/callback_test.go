package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// receiver is a callback receiver that counts POSTs per Idempotency-Key.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	posts  map[string]int    // delivered (2xx) per key
	tries  map[string]int    // every POST per key
	bodies map[string][]byte // the last body per key
	header map[string]nethttp.Header
	order  []string // keys in the order first delivered
	// fail, while set, answers 503.
	fail atomic.Bool
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{posts: map[string]int{}, tries: map[string]int{}, bodies: map[string][]byte{}, header: map[string]nethttp.Header{}}
	r.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, req *nethttp.Request) {
		b, _ := io.ReadAll(req.Body)
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries[key]++
		if req.Method != nethttp.MethodPost || req.Header.Get("Content-Type") != "application/json" || key == "" {
			w.WriteHeader(nethttp.StatusBadRequest)
			return
		}
		if r.fail.Load() {
			w.WriteHeader(nethttp.StatusServiceUnavailable)
			return
		}
		if r.posts[key] == 0 {
			r.order = append(r.order, key)
		}
		r.posts[key]++
		r.bodies[key], r.header[key] = b, req.Header.Clone()
		w.WriteHeader(nethttp.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// events are the events delivered, in order, with how often each key was.
func (r *receiver) events(t *testing.T) (events []string, counts map[string]int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	counts = map[string]int{}
	for _, k := range r.order {
		var b struct {
			Event string `json:"event"`
			Step  *struct {
				Name string `json:"name"`
			} `json:"step"`
		}
		if err := json.Unmarshal(r.bodies[k], &b); err != nil {
			t.Fatalf("body of %s: %v", k, err)
		}
		e := b.Event
		if b.Step != nil {
			e += " " + b.Step.Name
		}
		events = append(events, e)
		counts[k] = r.posts[k]
	}
	return events, counts
}

// startCallbackController runs a controller with callback configuration cb.
func startCallbackController(t *testing.T, systemNS string, cb *controller.CallbackConfig) *controller.Controller {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := controller.Setup(mgr, controller.Options{SystemNamespace: systemNS, Metrics: prometheus.NewRegistry(),
		Sandbox: testSandbox(), HTTP: loopbackHTTP, Config: controller.Config{Callback: cb}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// loopbackHTTP is testHTTP with loopback allowed, where the receivers are.
var loopbackHTTP = func() controller.HTTPOptions {
	h := testHTTP
	h.Fence.DenyLoopback = false
	return h
}()

const passStep = `parameter: {n: int | *0}
out: parameter.n + 1
`

const failStep = `import "vela/op"

fail: op.#Fail & {message: "broken on purpose"}
`

func delivered(r *v1alpha1.WorkflowRun) bool {
	return r.Status.Finished && r.Status.Callback != nil && r.Status.Callback.Pending == 0 && len(r.Status.Callback.Outbox) == 0
}

func TestCallbackEachTransitionOncePerKey(t *testing.T) {
	ns := namespace(t, "callback-once")
	sys := namespace(t, "sys-callback-once")
	recv := newReceiver(t)
	ctl := startCallbackController(t, sys, &controller.CallbackConfig{MinBackoff: metav1.Duration{Duration: 50 * time.Millisecond}})
	stepDef(t, sys, "pass", passStep)
	if err := env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook-auth"},
		StringData: map[string]string{"Authorization": "Bearer run-token"}}); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: steps, namespace: %s, labels: {team: blue}}
spec:
  callback: {url: %q, headersFromSecret: hook-auth}
  workflowSpec:
    steps:
    - {name: one, type: pass}
    - {name: two, type: pass, properties: {n: 2}}
    - {name: three, type: pass}
`, ns, recv.URL+"/hook"))
	run := waitRun(t, ns, "steps", 60*time.Second, delivered)
	// What the delivery kept in memory for the run goes once the cache
	// shows its outbox empty.
	for deadline := time.Now().Add(10 * time.Second); ctl.HeldCallbackRuns() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery still keeps the sent keys of %d runs", ctl.HeldCallbackRuns())
		}
	}
	events, counts := recv.events(t)
	want := []string{"runStarted", "stepStarted one", "stepSucceeded one", "stepStarted two", "stepSucceeded two",
		"stepStarted three", "stepSucceeded three", "runSucceeded"}
	if !sameSet(events, want) {
		t.Errorf("events delivered:\n%s\nwant (in any order):\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("key %s delivered %d times, want once", k, n)
		}
		if !strings.HasPrefix(k, string(run.UID)+"/") {
			t.Errorf("key %s does not start with the run's uid", k)
		}
		if got := recv.header[k].Get("Authorization"); got != "Bearer run-token" {
			t.Errorf("key %s: Authorization %q, want the run's Secret's", k, got)
		}
	}
	last := recv.order[len(recv.order)-1]
	if cb := run.Status.Callback; cb.Delivered != last || cb.DeliveredTime == nil || cb.LastError != "" || cb.Dropped != 0 {
		t.Errorf("status.callback %+v, want delivered %s and no error", cb, last)
	}
	var body map[string]any
	if err := json.Unmarshal(recv.bodies[last], &body); err != nil {
		t.Fatal(err)
	}
	if body["name"] != "steps" || body["namespace"] != ns || body["phase"] != "Succeeded" || body["runError"] != "" ||
		body["rollbackError"] != "" || fmt.Sprint(body["attributes"]) != "map[team:blue]" || body["uid"] != string(run.UID) {
		t.Errorf("runSucceeded body: %v", body)
	}
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	sort.Strings(g)
	sort.Strings(w)
	return slices.Equal(g, w)
}

func TestCallbackRetriesWithoutBlockingTheRun(t *testing.T) {
	ns := namespace(t, "callback-retry")
	sys := namespace(t, "sys-callback-retry")
	recv := newReceiver(t)
	recv.fail.Store(true)
	startCallbackController(t, sys, &controller.CallbackConfig{
		MinBackoff: metav1.Duration{Duration: 20 * time.Millisecond}, MaxBackoff: metav1.Duration{Duration: 200 * time.Millisecond}})
	stepDef(t, sys, "fail", failStep)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: failing, namespace: %s}
spec:
  callback: {url: %q, events: [runStarted, stepFailed, runFailed]}
  workflowSpec:
    steps:
    - {name: broken, type: fail}
`, ns, recv.URL))
	// The run finishes while every delivery fails, and says so.
	run := waitRun(t, ns, "failing", 60*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return r.Status.Finished && r.Status.Callback != nil && strings.Contains(r.Status.Callback.LastError, "503") &&
			r.Status.Callback.Pending > 0 && r.Status.Callback.LastErrorTime != nil
	})
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("run %s, want failed", run.Status.Phase)
	}
	// Tried again, with backoff, until the receiver recovers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		recv.mu.Lock()
		tries := 0
		for _, n := range recv.tries {
			tries += n
		}
		recv.mu.Unlock()
		if tries >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d POSTs while the receiver failed, want retries", tries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recv.fail.Store(false)
	run = waitRun(t, ns, "failing", 30*time.Second, delivered)
	events, counts := recv.events(t)
	if want := []string{"runStarted", "stepFailed broken", "runFailed"}; !slices.Equal(events, want) {
		t.Errorf("events %v, want %v (the events asked for, in order)", events, want)
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("key %s delivered %d times, want once", k, n)
		}
	}
	if cb := run.Status.Callback; cb.LastError != "" || cb.LastErrorTime != nil {
		t.Errorf("lastError %q kept after a delivery succeeded", cb.LastError)
	}
	var body map[string]any
	if err := json.Unmarshal(recv.bodies[recv.order[2]], &body); err != nil {
		t.Fatal(err)
	}
	if body["phase"] != "Failed" || !strings.Contains(fmt.Sprint(body["runError"]), "broken") {
		t.Errorf("runFailed body %v, want phase Failed and the run's error", body)
	}
}

func TestCallbackControllerDefault(t *testing.T) {
	ns := namespace(t, "callback-default")
	sys := namespace(t, "sys-callback-default")
	recv := newReceiver(t)
	own := newReceiver(t)
	if err := env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "controller-hook"},
		StringData: map[string]string{"X-Token": "controller"}}); err != nil {
		t.Fatal(err)
	}
	startCallbackController(t, sys, &controller.CallbackConfig{URL: recv.URL, HeadersFromSecret: "controller-hook",
		Events: []v1alpha1.CallbackEvent{v1alpha1.CallbackRunSucceeded}})
	stepDef(t, sys, "pass", passStep)
	for name, cb := range map[string]string{"plain": "", "own": fmt.Sprintf("callback: {url: %q}", own.URL)} {
		applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: %s, namespace: %s}
spec:
  %s
  workflowSpec:
    steps:
    - {name: one, type: pass}
`, name, ns, cb))
	}
	waitRun(t, ns, "plain", 60*time.Second, delivered)
	waitRun(t, ns, "own", 60*time.Second, delivered)
	events, _ := recv.events(t)
	if !slices.Equal(events, []string{"runSucceeded"}) {
		t.Errorf("the controller-wide callback heard %v, want only the run without a callback's runSucceeded", events)
	}
	for k := range recv.header {
		if got := recv.header[k].Get("X-Token"); got != "controller" {
			t.Errorf("X-Token %q, want the controller Secret's", got)
		}
	}
	if events, _ := own.events(t); len(events) != 4 {
		t.Errorf("the run's own callback heard %v, want its 4 transitions", events)
	}
}

func TestCallbackConfigFile(t *testing.T) {
	path := t.TempDir() + "/config.yaml"
	if err := os.WriteFile(path, []byte(`callback:
  url: https://hooks.example/stepflow
  headersFromSecret: hook
  events: [runSucceeded, runFailed]
  timeout: 3s
  minBackoff: 200ms
  maxBackoff: 1m
  workers: 2
  maxPending: 10
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := controller.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &controller.CallbackConfig{URL: "https://hooks.example/stepflow", HeadersFromSecret: "hook",
		Events:  []v1alpha1.CallbackEvent{v1alpha1.CallbackRunSucceeded, v1alpha1.CallbackRunFailed},
		Timeout: metav1.Duration{Duration: 3 * time.Second}, MinBackoff: metav1.Duration{Duration: 200 * time.Millisecond},
		MaxBackoff: metav1.Duration{Duration: time.Minute}, Workers: 2, MaxPending: 10}
	if d := cmp.Diff(want, c.Callback); d != "" {
		t.Errorf("callback section (-want +got):\n%s", d)
	}
	if err := os.WriteFile(path, []byte("callback: {uri: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a misspelt callback key: %v, want an error naming the file", err)
	}
}

// TestCallbackSecretReadAsTheRun: a run's headersFromSecret is read as the
// run's ServiceAccount, not with the controller's rights: a run acting as
// a ServiceAccount that may not read the Secret gets no POST, and its
// status says why.
func TestCallbackSecretReadAsTheRun(t *testing.T) {
	ns := namespace(t, "callback-identity")
	sys := namespace(t, "sys-callback-identity")
	recv := newReceiver(t)
	startCallbackController(t, sys, &controller.CallbackConfig{MinBackoff: metav1.Duration{Duration: 50 * time.Millisecond}})
	stepDef(t, sys, "pass", passStep)
	if err := env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook-auth"},
		StringData: map[string]string{"Authorization": "Bearer run-token"}}); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: nobody, namespace: %s}
spec:
  serviceAccountName: nobody
  callback: {url: %q, headersFromSecret: hook-auth}
  workflowSpec:
    steps:
    - {name: one, type: pass}
`, ns, recv.URL))
	run := waitRun(t, ns, "nobody", 60*time.Second, func(r *v1alpha1.WorkflowRun) bool {
		return r.Status.Finished && r.Status.Callback != nil && r.Status.Callback.LastError != ""
	})
	if msg := run.Status.Callback.LastError; !strings.Contains(msg, "hook-auth") || !strings.Contains(msg, "serviceaccount "+ns+"/nobody") {
		t.Errorf("lastError %q, want it to name the Secret and the run's ServiceAccount", msg)
	}
	if run.Status.Callback.Pending == 0 {
		t.Errorf("pending 0: the transitions were dropped, want them kept for when the Secret can be read")
	}
	if events, _ := recv.events(t); len(events) != 0 {
		t.Errorf("the receiver got %v without the run's headers", events)
	}
}

// TestCallbackOfARunWithoutItsWorkflow: a run that fails because its
// Workflow does not exist still tells its callback.
func TestCallbackOfARunWithoutItsWorkflow(t *testing.T) {
	ns := namespace(t, "callback-noworkflow")
	sys := namespace(t, "sys-callback-noworkflow")
	recv := newReceiver(t)
	startCallbackController(t, sys, nil)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: orphan, namespace: %s}
spec:
  workflowRef: gone
  callback: {url: %q}
`, ns, recv.URL))
	waitRun(t, ns, "orphan", 60*time.Second, delivered)
	events, _ := recv.events(t)
	if !slices.Equal(events, []string{"runFailed"}) {
		t.Fatalf("events %v, want runFailed", events)
	}
	var body map[string]any
	if err := json.Unmarshal(recv.bodies[recv.order[0]], &body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(body["runError"]), "no Workflow") {
		t.Errorf("runError %v, want the missing Workflow named", body["runError"])
	}
}

// TestCallbackHearsSuspendAndResumeFromOutside: a resume written by the
// CLI (engine.Resume on the status), which the controller's own writes
// never show changing, is heard, as is the suspension a step makes.
func TestCallbackHearsSuspendAndResumeFromOutside(t *testing.T) {
	ns := namespace(t, "callback-suspend")
	shippedStepDef(t, ns, "suspend")
	recv := newReceiver(t)
	startCallbackController(t, "vela-system", nil)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: gates, namespace: %s}
spec:
  callback: {url: %q, events: [runSuspended, runResumed, runSucceeded]}
  workflowSpec:
    steps:
    - {name: first, type: suspend}
    - {name: second, type: suspend}
`, ns, recv.URL))
	heard := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if events, _ := recv.events(t); len(events) >= n {
				return
			}
			if time.Now().After(deadline) {
				events, _ := recv.events(t)
				t.Fatalf("heard %v, want %d events", events, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	heard(1) // held by first
	operate(t, ns, "gates", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "") })
	heard(3) // resumed, then held by second
	operate(t, ns, "gates", func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "") })
	waitRun(t, ns, "gates", 30*time.Second, delivered)
	events, counts := recv.events(t)
	if want := []string{"runSuspended", "runResumed", "runSuspended", "runResumed", "runSucceeded"}; !slices.Equal(events, want) {
		t.Errorf("events %v, want %v", events, want)
	}
	if len(counts) != 5 {
		t.Errorf("%d keys for 5 transitions", len(counts))
	}
}

// statusPatches counts the PATCHes of workflowruns/status the API server
// has served (apiserver_request_total).
func statusPatches(t *testing.T) int {
	t.Helper()
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(strings.TrimSuffix(env.Config.Host, "/") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="workflowruns"`) ||
			!strings.Contains(line, `verb="PATCH"`) || !strings.Contains(line, `subresource="status"`) {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.Atoi(fields[len(fields)-1])
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += n
	}
	return total
}

// TestCallbackRequestCost measures the status writes of a five-step run
// without a callback and with one: the delivery adds at most one status
// patch per write of the run (its transitions are in the run's own
// writes), and one POST per transition.
func TestCallbackRequestCost(t *testing.T) {
	ns := namespace(t, "callback-cost")
	sys := namespace(t, "sys-callback-cost")
	recv := newReceiver(t)
	startCallbackController(t, sys, nil)
	stepDef(t, sys, "pass", passStep)
	patchesOf := func(name, callback string, done func(*v1alpha1.WorkflowRun) bool) int {
		before := statusPatches(t)
		applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: %s, namespace: %s}
spec:
  %s
  workflowSpec:
    steps:
    - {name: s1, type: pass}
    - {name: s2, type: pass}
    - {name: s3, type: pass}
    - {name: s4, type: pass}
    - {name: s5, type: pass}
`, name, ns, callback))
		waitRun(t, ns, name, 60*time.Second, done)
		time.Sleep(time.Second) // the counter counts a request once it has ended
		return statusPatches(t) - before
	}
	plain := patchesOf("plain", "", finishedRun)
	with := patchesOf("with", fmt.Sprintf("callback: {url: %q}", recv.URL), delivered)
	events, _ := recv.events(t)
	t.Logf("a 5-step run: %d status patches without a callback, %d with one (%d POSTs)", plain, with, len(events))
	if len(events) != 12 {
		t.Errorf("%d POSTs, want 12: runStarted, 5 × stepStarted and stepSucceeded, runSucceeded", len(events))
	}
	if with > 2*plain {
		t.Errorf("%d status patches with a callback, more than one delivery patch per write of the run (%d without)", with, plain)
	}
}
