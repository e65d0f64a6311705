package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/runop"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// echoStep posts the run context variable flag it sees ("none" without
// one) and its step name to parameter.url.
const echoStep = `import (
	"vela/op"
	"encoding/json"
)

context: flag: *"none" | string
post: op.#HTTPPost & {
	url: parameter.url
	request: body: json.Marshal({flag: context.flag, step: context.stepName})
}
parameter: url: string
`

// hits records what echo steps posted.
type hits struct {
	mu   sync.Mutex
	seen []string // "step=flag"
}

func (h *hits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b struct{ Flag, Step string }
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &b)
	h.mu.Lock()
	h.seen = append(h.seen, b.Step+"="+b.Flag)
	h.mu.Unlock()
	fmt.Fprint(w, `{}`)
}

func (h *hits) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// opsRig is a tenant with a controller running its runs, the API over
// real HTTP, and an echo step definition posting to a counting server.
type opsRig struct {
	t    *testing.T
	ten  tenant
	api  *httptest.Server
	hits *hits
	echo string // the echo server's URL
	// launcher is the name the launcher authenticates as.
	launcher string
}

func newOpsRig(t *testing.T) *opsRig {
	t.Helper()
	ctx := context.Background()
	ten := newTenant(t)
	runner := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}
	if err := tenancy.SetUpRunner(ctx, env.Client, ten.ns, tenancy.DefaultServiceAccount, runner); err != nil {
		t.Fatal(err)
	}
	h := &hits{}
	echo := httptest.NewServer(h)
	t.Cleanup(echo.Close)
	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "echo"}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: echoStep}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	startOpsController(t)
	return &opsRig{t: t, ten: ten, api: serve(t, ten.ns), hits: h, echo: echo.URL,
		launcher: "system:serviceaccount:" + usersNS + ":launcher-" + strings.TrimPrefix(ten.ns, "tenant-")}
}

// startOpsController runs a controller until the test ends (so runs of
// other tests in this package do not move).
func startOpsController(t *testing.T) {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = controller.Setup(mgr, controller.Options{SystemNamespace: systemNS, Metrics: prometheus.NewRegistry(),
		HTTP: controller.HTTPOptions{DenyAPIEndpoints: true, Fence: netfence.Config{DenyLoopback: true, AllowCIDRs: []string{"127.0.0.0/8", "::1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// createRun creates a run of steps (TYPE or NAME:TYPE) one after the other.
func (o *opsRig) createRun(name string, steps ...string) string {
	o.t.Helper()
	mode := &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: o.ten.ns, Name: name},
		Spec: v1alpha1.WorkflowRunSpec{Mode: mode, WorkflowSpec: &v1alpha1.WorkflowSpec{}}}
	for _, s := range steps {
		n, typ, _ := strings.Cut(s, ":")
		step := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: n, Type: typ}}
		if typ == "echo" {
			step.Properties = rawJSON(o.t, map[string]any{"url": o.echo})
		}
		run.Spec.WorkflowSpec.Steps = append(run.Spec.WorkflowSpec.Steps, step)
	}
	if err := env.Client.Create(context.Background(), run); err != nil {
		o.t.Fatal(err)
	}
	return url.PathEscape(o.ten.ns + "/" + name)
}

func rawJSON(t *testing.T, v any) *runtime.RawExtension {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &runtime.RawExtension{Raw: b}
}

// put sends PUT /workflow/{id}/{path} as the launcher.
func (o *opsRig) put(id, path, body string) reply {
	o.t.Helper()
	return send(o.t, http.MethodPut, o.api.URL+"/workflow/"+id+"/"+path, o.ten.launchTok, body)
}

func (o *opsRig) run(name string) *v1alpha1.WorkflowRun {
	o.t.Helper()
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: o.ten.ns, Name: name}, &run); err != nil {
		o.t.Fatal(err)
	}
	return &run
}

// waitState waits until the run's instance state is want.
func (o *opsRig) waitState(name, want string) {
	o.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run := o.run(name)
		if got := app.InstanceState(run); got == want {
			return
		} else if time.Now().After(deadline) {
			o.t.Fatalf("run %s is %s (%s), want %s after 30s; steps %+v", name, got, run.Status.Message, want, run.Status.Steps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (o *opsRig) step(name, step string) v1alpha1.StepStatus {
	for _, s := range o.run(name).Status.Steps {
		if s.Name == step {
			return s.StepStatus
		}
	}
	return v1alpha1.StepStatus{}
}

func decodeCommand(t *testing.T, r reply) Command {
	t.Helper()
	var c Command
	if err := json.Unmarshal(r.Data, &c); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	return c
}

// events returns the messages of the Events on run name.
func (o *opsRig) events(name string) []string {
	var list corev1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(o.ten.ns)); err != nil {
		o.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Message)
		}
	}
	return out
}

func (o *opsRig) waitEvent(name, contains string) {
	o.t.Helper()
	eventually(o.t, func() bool {
		for _, m := range o.events(name) {
			if strings.Contains(m, contains) {
				return true
			}
		}
		return false
	})
}

// retryFromTask re-runs a task with what it saw on its last attempt: the
// context variable set after it ran is not what its re-run, or the steps
// after it, see. Along the way: resume, context, retry and terminate
// answer SREWorks' command and refuse what the run's state does not allow
// with 409, and every write is recorded with who did it.
func TestRetryFromTaskUsesSnapshot(t *testing.T) {
	o := newOpsRig(t)
	id := o.createRun("gray", "hold:suspend", "b:echo", "check:suspend", "c:echo")
	o.waitState("gray", app.InstanceSuspend)

	// Refusals while it runs.
	o.put(id, "retry", "").want(t, http.StatusConflict, http.StatusConflict)
	r := o.put(id, "retryFromTask?taskId=b", "")
	r.want(t, http.StatusConflict, http.StatusConflict)
	if !strings.Contains(r.Message, "SUSPEND") {
		t.Errorf("409 message %q does not name the status", r.Message)
	}

	o.put(id, "context", `{"context": {"flag": "one"}}`).want(t, http.StatusOK, http.StatusOK)
	c := decodeCommand(t, o.put(id, "resume", ""))
	if c.Command != "RESUME" || !c.Success || c.ClientHost != "127.0.0.1" {
		t.Errorf("resume answered %+v", c)
	}
	o.waitStep("gray", "check", v1alpha1.WorkflowStepPhaseSuspending, 1) // after b
	if got := o.hits.get(); len(got) != 1 || got[0] != "b=one" {
		t.Fatalf("posts %v, want b=one", got)
	}
	o.put(id, "context", `{"context": {"flag": "two"}}`).want(t, http.StatusOK, http.StatusOK)
	o.put(id, "resume", "").want(t, http.StatusOK, http.StatusOK)
	o.waitState("gray", app.InstanceSuccess)
	if got := o.hits.get(); len(got) != 2 || got[1] != "c=two" {
		t.Fatalf("posts %v, want c=two after b=one", got)
	}
	o.put(id, "resume", "").want(t, http.StatusConflict, http.StatusConflict)
	r = o.put(id, "terminate", "")
	r.want(t, http.StatusOK, http.StatusOK)
	if c := decodeCommand(t, r); c.Command != "TERMINATE" || !c.Success || !strings.Contains(c.Message, "already finished") {
		t.Errorf("terminate of a finished run answered %+v", c)
	}

	// Retry from b: b and c see flag one again, what b saw.
	firstB := o.step("gray", "b").ID
	c = decodeCommand(t, o.put(id, "retryFromTask?taskId=2", ""))
	if c.Command != "RETRY_FROM_TASK" || !c.Success {
		t.Errorf("retryFromTask answered %+v", c)
	}
	o.waitStep("gray", "check", v1alpha1.WorkflowStepPhaseSuspending, 2) // after b again
	if got := o.hits.get(); len(got) != 3 || got[2] != "b=one" {
		t.Fatalf("posts %v, want b=one again (what b saw), not two", got)
	}
	if b := o.step("gray", "b"); b.ID == firstB || b.Attempt != 2 {
		t.Errorf("b's re-run has id %q attempt %d; its first attempt had %q", b.ID, b.Attempt, firstB)
	}
	if h := o.step("gray", "hold"); h.Phase != v1alpha1.WorkflowStepPhaseSucceeded || h.Attempt != 1 {
		t.Errorf("hold, before b, is %s attempt %d: want kept", h.Phase, h.Attempt)
	}
	o.put(id, "resume", "").want(t, http.StatusOK, http.StatusOK)
	o.waitState("gray", app.InstanceSuccess)
	if got := o.hits.get(); len(got) != 4 || got[3] != "c=one" {
		t.Fatalf("posts %v, want c=one (the context b saw)", got)
	}

	// Retry: from the first step, with a new attempt of each.
	o.put(id, "retry", "").want(t, http.StatusOK, http.StatusOK)
	o.waitStep("gray", "hold", v1alpha1.WorkflowStepPhaseSuspending, 1)
	if run := o.run("gray"); run.Status.RestartCount != 1 {
		t.Errorf("restart count %d after retry, want 1", run.Status.RestartCount)
	}

	// Who did it: the annotation and Events.
	if got := o.run("gray").Annotations[runop.AnnotationOperatedBy]; got != o.launcher {
		t.Errorf("operated-by %q, want %q", got, o.launcher)
	}
	if got := o.run("gray").Annotations[runop.AnnotationOperation]; !strings.HasPrefix(got, "retry at ") {
		t.Errorf("operation annotation %q", got)
	}
	o.waitEvent("gray", "retry from task by "+o.launcher+": task 2 (step b)")
	o.waitEvent("gray", "set context by "+o.launcher+": variables flag")
}

// The cases every operation refuses: no token, a reader, no such
// instance or task, bad bodies, a stale lockVersion or If-Match (and the
// run is left as it was).
func TestOperationRefusals(t *testing.T) {
	o := newOpsRig(t)
	id := o.createRun("r", "hold:suspend", "b:echo")
	o.waitState("r", app.InstanceSuspend)
	base := o.api.URL + "/workflow/" + id

	send(t, http.MethodPut, base+"/resume", "", "").want(t, http.StatusUnauthorized, http.StatusUnauthorized)
	for _, p := range []string{"resume", "terminate", "retry", "context", "tasks/b/suspend"} {
		body := ""
		if p == "context" {
			body = `{"context": {"a": 1}}`
		}
		send(t, http.MethodPut, base+"/"+p, o.ten.readerTok, body).want(t, http.StatusForbidden, http.StatusForbidden)
	}
	o.put(url.PathEscape(o.ten.ns+"/missing"), "resume", "").want(t, http.StatusNotFound, http.StatusNotFound)
	o.put(id, "retryFromTask", "").want(t, http.StatusBadRequest, CodeBadInput)
	o.put(id, "retryFromTask?taskId=nope", "").want(t, http.StatusNotFound, http.StatusNotFound)
	o.put(id, "tasks/9/suspend", "").want(t, http.StatusNotFound, http.StatusNotFound)
	for _, body := range []string{"", `{}`, `{"context": {}}`, `{"context": 1}`, `not json`} {
		o.put(id, "context", body).want(t, http.StatusBadRequest, CodeBadInput)
	}
	for _, key := range []string{"name", "namespace", "stepName", "stepSessionID"} {
		r := o.put(id, "context", `{"context": {"ok": 1, "`+key+`": "x"}}`)
		r.want(t, http.StatusBadRequest, CodeBadInput)
		if !strings.Contains(r.Message, `"`+key+`"`) {
			t.Errorf("reserved key %s: message %q does not name it", key, r.Message)
		}
	}
	if vars := o.vars("r"); len(vars) != 0 {
		t.Errorf("a refused context body set variables: %v", vars)
	}

	// A stale lockVersion or If-Match is a 409 and changes nothing.
	before := o.run("r")
	stale := fmt.Sprint(lockVersion(before) - 1)
	r := o.put(id, "resume?lockVersion="+stale, "")
	r.want(t, http.StatusConflict, http.StatusConflict)
	req, _ := http.NewRequest(http.MethodPut, base+"/resume", nil)
	req.Header.Set("Authorization", "Bearer "+o.ten.launchTok)
	req.Header.Set("If-Match", `"`+stale+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("If-Match %s: HTTP %d, want 409", stale, resp.StatusCode)
	}
	o.put(id, "resume?lockVersion=abc", "").want(t, http.StatusBadRequest, CodeBadInput)
	if after := o.run("r"); after.ResourceVersion != before.ResourceVersion || app.InstanceState(after) != app.InstanceSuspend {
		t.Errorf("run changed by refused resumes: version %s -> %s, %s", before.ResourceVersion, after.ResourceVersion, app.InstanceState(after))
	}
	// If-Match * is any version.
	req.Header.Set("If-Match", "*")
	sreq, _ := http.NewRequest(http.MethodPut, base+"/tasks/b/suspend", strings.NewReader(`{"extMessage": "hold b"}`))
	sreq.Header = req.Header
	resp, err = http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("If-Match *: HTTP %d, want 200", resp.StatusCode)
	}
	o.put(id, "tasks/b/resume", "").want(t, http.StatusOK, http.StatusOK)
	// The current lockVersion goes through (a few tries: the controller
	// may write the run between the read and the resume).
	for try := 0; ; try++ {
		r := o.put(id, "resume?lockVersion="+fmt.Sprint(lockVersion(o.run("r"))), "")
		if r.status == http.StatusConflict && try < 5 {
			continue
		}
		r.want(t, http.StatusOK, http.StatusOK)
		break
	}
	o.waitState("r", app.InstanceSuccess)
}

// vars are the run's context variables set at run time (its journal).
func (o *opsRig) vars(name string) map[string]any {
	o.t.Helper()
	run := o.run(name)
	j, err := journal.Open(context.Background(), kubestore.New(env.Client, run, nil).WithLive(env.Client), journal.Limits{})
	if err != nil {
		o.t.Fatal(err)
	}
	return j.Vars()
}

// waitStep waits until step of run name is in phase at attempt.
func (o *opsRig) waitStep(name, step string, phase v1alpha1.WorkflowStepPhase, attempt int32) {
	o.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := o.step(name, step)
		if s.Phase == phase && s.Attempt == attempt {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("step %s of %s is %s attempt %d (%s), want %s attempt %d after 30s", step, name, s.Phase, s.Attempt, s.Message, phase, attempt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Task operations act on one step whatever its state and record their
// extMessage on it and in an Event: a pending task suspended does not
// start until resumed; terminate of a finished task is a no-op.
func TestTaskOperations(t *testing.T) {
	o := newOpsRig(t)
	id := o.createRun("t", "hold:suspend", "b:echo", "c:echo")
	o.waitState("t", app.InstanceSuspend)

	o.put(id, "tasks/c/suspend", `{"extMessage": "hold c for review"}`).want(t, http.StatusOK, http.StatusOK)
	o.put(id, "tasks/b/resume", "").want(t, http.StatusConflict, http.StatusConflict) // b is pending, not suspended
	o.put(id, "tasks/1/resume", `{"extMessage": "go on"}`).want(t, http.StatusOK, http.StatusOK)
	eventually(t, func() bool { return o.step("t", "b").Phase == v1alpha1.WorkflowStepPhaseSucceeded })
	time.Sleep(time.Second) // c must stay held: give the controller the chance to start it
	if c := o.step("t", "c"); c.Phase != v1alpha1.WorkflowStepPhaseSuspending || c.ExtMessage != "hold c for review" {
		t.Fatalf("c is %s (%q), want held with its extMessage", c.Phase, c.ExtMessage)
	}
	if got := o.hits.get(); len(got) != 1 || got[0] != "b=none" {
		t.Fatalf("posts %v, want only b's", got)
	}
	if h := o.step("t", "hold"); h.ExtMessage != "go on" {
		t.Errorf("hold's extMessage %q", h.ExtMessage)
	}
	o.put(id, "tasks/c/resume", `{"extMessage": "reviewed"}`).want(t, http.StatusOK, http.StatusOK)
	o.waitState("t", app.InstanceSuccess)
	if got := o.hits.get(); len(got) != 2 || got[1] != "c=none" {
		t.Fatalf("posts %v, want c's after its resume", got)
	}
	o.put(id, "tasks/c/terminate", `{"extMessage": "too late"}`).want(t, http.StatusOK, http.StatusOK)
	if c := o.step("t", "c"); c.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
		t.Errorf("terminate of a finished task made it %s", c.Phase)
	}
	o.put(id, "tasks/c/suspend", "").want(t, http.StatusConflict, http.StatusConflict)
	o.put(id, "tasks/c/resume", `{"extMessage": 1}`).want(t, http.StatusBadRequest, CodeBadInput)
	o.waitEvent("t", "suspend task by "+o.launcher+": task 3 (step c): hold c for review")

	// Terminate of a running task fails it; the run goes on as after a
	// failure.
	id2 := o.createRun("t2", "a:suspend", "z:echo")
	o.waitState("t2", app.InstanceSuspend)
	o.put(id2, "tasks/a/terminate", `{"extMessage": "stop a"}`).want(t, http.StatusOK, http.StatusOK)
	eventually(t, func() bool { return o.run("t2").Status.Finished })
	if a := o.step("t2", "a"); a.Phase != v1alpha1.WorkflowStepPhaseFailed || a.ExtMessage != "stop a" {
		t.Errorf("a is %s (%q)", a.Phase, a.ExtMessage)
	}
}
