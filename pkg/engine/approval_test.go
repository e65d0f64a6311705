package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

// approvalDefinition is the community approval pattern, flat vela/op
// dialect. The step files an approval request (an Effect: once per step
// attempt), polls the request's answer (Idempotent: on every evaluation),
// waits while the approval service has not queued the request to an approver
// yet, and suspends while an approver has it. Once the run is resumed, the
// run context variable decision says what happens: continue, roll back (the
// step fails) or stop (the step suspends again for the operator to terminate
// the run).
const approvalDefinition = `
import (
	"vela/op"
	"encoding/json"
)

"approval": {
	type:        "workflow-step"
	description: "Ask an approval service, wait for the approver, then continue, roll back or stop."
}
template: {
	parameter: url: string

	ask: op.#HTTPPost & {
		url: parameter.url + "/approvals"
		request: body: json.Marshal({step: context.stepName, session: context.stepSessionID})
	}
	ticket: json.Unmarshal(ask.response.body).id

	poll: op.#HTTPGet & {url: parameter.url + "/approvals/" + ticket}
	answer: json.Unmarshal(poll.response.body).answer

	queued: op.#ConditionalWait & {
		continue: poll.response.statusCode == 200 && answer != "queued"
		message:  "approval request \(ticket) is \(answer)"
	}
	if answer == "pending" {
		await: op.#Suspend & {message: "waiting for the approver of \(ticket)"}
	}

	context: decision: *"continue" | "rollback" | "stop"
	decide: op.#Steps & {
		if context.decision == "rollback" {
			rollback: op.#Fail & {message: "rolled back by the approver"}
		}
		if context.decision == "stop" {
			halt: op.#Suspend & {message: "stopped by the approver"}
		}
	}
}
`

// promoteDefinition is the step after the approval: one POST.
const promoteDefinition = `
import "vela/op"

promote: op.#HTTPPost & {url: parameter.url + "/promote"}
parameter: url: string
`

// approvalServer is the approval service. It counts hits by method and
// path, keeps the Idempotency-Key of each hit and the body of each approval
// request, and honours the key: a request repeated with the same key gets
// the ticket the first one got.
type approvalServer struct {
	*httptest.Server

	mu      sync.Mutex
	answer  string
	hits    map[string]int
	keys    map[string][]string
	asked   []string
	tickets map[string]string
	// dropGets makes the next GETs fail without a response.
	dropGets int
}

func newApprovalServer(t *testing.T) *approvalServer {
	s := &approvalServer{answer: "queued", hits: map[string]int{}, keys: map[string][]string{}, tickets: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *approvalServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hit := r.Method + " " + r.URL.Path
	s.hits[hit]++
	s.keys[hit] = append(s.keys[hit], r.Header.Get(httpop.IdempotencyHeader))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case hit == "POST /approvals":
		s.asked = append(s.asked, string(body))
		key := r.Header.Get(httpop.IdempotencyHeader)
		id, ok := s.tickets[key]
		if !ok || key == "" {
			id = fmt.Sprintf("t%d", len(s.tickets)+1)
			s.tickets[key] = id
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id": %q}`, id)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/approvals/"):
		if s.dropGets > 0 {
			s.dropGets--
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic("approvalServer: no hijacker")
			}
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		fmt.Fprintf(w, `{"answer": %q}`, s.answer)
	case hit == "POST /promote":
		io.WriteString(w, "{}")
	default:
		http.NotFound(w, r)
	}
}

func (s *approvalServer) setAnswer(a string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = a
}

func (s *approvalServer) dropNextGets(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropGets = n
}

func (s *approvalServer) count(hit string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[hit]
}

// polls counts the GETs of any ticket.
func (s *approvalServer) polls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for hit, c := range s.hits {
		if strings.HasPrefix(hit, "GET /approvals/") {
			n += c
		}
	}
	return n
}

// keysOf returns the Idempotency-Key of each hit, in order.
func (s *approvalServer) keysOf(hit string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys[hit])
}

func (s *approvalServer) askedBodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

var approvalT0 = time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)

// approvalRig drives one run like the controller does: each tick reads the
// run as the API server keeps it (JSON) and writes the new status back.
// boot simulates a restart of the controller: a fresh evaluator and fresh
// ops, and the journal reopened from the store.
type approvalRig struct {
	t     *testing.T
	srv   *approvalServer
	store *journal.Memory
	defs  engine.DefinitionMap
	// saved is the run as the API server has it.
	saved []byte
	run   *v1alpha1.WorkflowRun
	j     *journal.Journal
	ev    *eval.Evaluator
	now   time.Time
}

func newApprovalRig(t *testing.T) *approvalRig {
	t.Helper()
	srv := newApprovalServer(t)
	defs := engine.DefinitionMap{}
	for name, src := range map[string]string{"approval.cue": approvalDefinition, "promote.cue": promoteDefinition} {
		d, err := eval.ParseDefinitionSource(name, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		defs[d.Name] = d.Definition
	}
	props, err := json.Marshal(map[string]string{"url": srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "release", Namespace: "team-a", UID: "uid-release"},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "approve", Type: "approval", Properties: &runtime.RawExtension{Raw: props}}},
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "promote", Type: "promote", Properties: &runtime.RawExtension{Raw: props}}},
		}}},
	}
	r := &approvalRig{t: t, srv: srv, store: journal.NewMemory(), defs: defs, now: approvalT0}
	r.saved = r.encode(run)
	r.boot()
	return r
}

func (r *approvalRig) encode(run *v1alpha1.WorkflowRun) []byte {
	r.t.Helper()
	b, err := json.Marshal(run)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// load reads the run from what the API server has.
func (r *approvalRig) load() {
	r.t.Helper()
	r.run = &v1alpha1.WorkflowRun{}
	if err := json.Unmarshal(r.saved, r.run); err != nil {
		r.t.Fatal(err)
	}
}

// boot starts the controller afresh: new ops and evaluator, the journal
// reopened from the store, the run read from the API server.
func (r *approvalRig) boot() {
	r.t.Helper()
	reg := op.NewRegistry().Add(builtin.New(), builtin.NewLog(), httpop.New(httpop.Options{}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		r.t.Fatal(err)
	}
	j, err := journal.Open(context.Background(), r.store, journal.Limits{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.ev, r.j = ev, j
	r.load()
}

// tryTick runs one tick and, if it succeeds, writes the status back and
// moves the clock to the wake-up the tick asked for (or by a second).
func (r *approvalRig) tryTick() error {
	r.t.Helper()
	spec := r.run.Spec
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: r.run, Steps: spec.WorkflowSpec.Steps, Mode: spec.Mode,
		Definitions: r.defs, Evaluator: r.ev, Ops: op.Direct, Journal: r.j,
		Now: func() time.Time { return r.now },
	})
	if err != nil {
		return err
	}
	r.run.Status = res.Status
	r.write()
	if res.WakeAt.After(r.now) {
		r.now = res.WakeAt
	} else {
		r.now = r.now.Add(time.Second)
	}
	return nil
}

func (r *approvalRig) tick() {
	r.t.Helper()
	if err := r.tryTick(); err != nil {
		r.t.Fatalf("tick: %v", err)
	}
}

// write stores the run's status as the API server would, and reads it back.
func (r *approvalRig) write() {
	r.t.Helper()
	r.saved = r.encode(r.run)
	r.load()
}

// operate applies an operation to the status, as the REST API does, then
// writes the status and flushes the journal.
func (r *approvalRig) operate(fn func(st *v1alpha1.WorkflowRunStatus) error) {
	r.t.Helper()
	if err := fn(&r.run.Status); err != nil {
		r.t.Fatal(err)
	}
	if err := r.j.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.write()
}

func (r *approvalRig) step(name string) v1alpha1.StepStatus {
	for _, s := range r.run.Status.Steps {
		if s.Name == name {
			return s.StepStatus
		}
	}
	return v1alpha1.StepStatus{}
}

// phases is the run's phase and each step's phase and reason.
func (r *approvalRig) phases() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run=%s finished=%v", r.run.Status.Phase, r.run.Status.Finished)
	for _, s := range r.run.Status.Steps {
		fmt.Fprintf(&b, " %s=%s/%s", s.Name, s.Phase, s.Reason)
	}
	return b.String()
}

// reticks ticks n times, rebooting the controller half-way, and checks
// after each tick that the step phases stay put and the GET poll was hit
// getsPerTick more times.
func (r *approvalRig) reticks(n, getsPerTick int) {
	r.t.Helper()
	want := r.phases()
	gets := r.srv.polls()
	for i := 0; i < n; i++ {
		if i == n/2 {
			r.boot()
		}
		r.tick()
		gets += getsPerTick
		if got := r.srv.polls(); got != gets {
			r.t.Fatalf("re-tick %d: the GET poll hit %d times, want %d", i+1, got, gets)
		}
		if got := r.phases(); got != want {
			r.t.Fatalf("re-tick %d changed the run:\n got %s\nwant %s", i+1, got, want)
		}
	}
}

// checkAsked checks that the approval request went out exactly wantHits
// times, always with the Idempotency-Key of attempt approve's id and that
// id in its body.
func (r *approvalRig) checkAsked(wantHits int) {
	r.t.Helper()
	id := r.step("approve").ID
	if id == "" {
		r.t.Fatal("step approve has no id")
	}
	key := httpop.IdempotencyKey(op.Step{RunUID: string(r.run.UID), StepID: id}, "ask")
	want := slices.Repeat([]string{key}, wantHits)
	if diff := cmp.Diff(want, r.srv.keysOf("POST /approvals")); diff != "" {
		r.t.Errorf("Idempotency-Keys of POST /approvals (-want +got):\n%s", diff)
	}
	for i, body := range r.srv.askedBodies() {
		var got struct{ Step, Session string }
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			r.t.Fatalf("approval request %d: %v", i+1, err)
		}
		if got.Step != "approve" || got.Session != id {
			r.t.Errorf("approval request %d = %s, want step approve, session %s", i+1, body, id)
		}
	}
	for _, k := range r.srv.keysOf("GET /approvals/t1") {
		if k != "" {
			r.t.Errorf("a GET poll carried Idempotency-Key %q; only effects carry one", k)
			break
		}
	}
}

func TestApprovalFlow(t *testing.T) {
	type want struct {
		run            v1alpha1.WorkflowRunPhase
		approve        v1alpha1.WorkflowStepPhase
		approveReason  string
		promote        v1alpha1.WorkflowStepPhase
		promoteReason  string
		promoteHits    int
		approveMessage string
	}
	for _, tc := range []struct {
		decision string
		// terminate: the operator terminates the run after the tick that
		// follows the resume.
		terminate bool
		want      want
	}{{
		decision: "continue",
		want: want{run: v1alpha1.WorkflowRunSucceeded,
			approve: v1alpha1.WorkflowStepPhaseSucceeded, promote: v1alpha1.WorkflowStepPhaseSucceeded, promoteHits: 1},
	}, {
		decision: "rollback",
		want: want{run: v1alpha1.WorkflowRunFailed,
			approve: v1alpha1.WorkflowStepPhaseFailed, approveReason: eval.ReasonFail, approveMessage: "rolled back by the approver",
			promote: v1alpha1.WorkflowStepPhaseSkipped, promoteReason: engine.ReasonUpstreamNotSucceeded},
	}, {
		decision:  "stop",
		terminate: true,
		want: want{run: v1alpha1.WorkflowRunTerminated,
			approve: v1alpha1.WorkflowStepPhaseFailed, approveReason: engine.ReasonTerminate, approveMessage: "terminated"},
	}} {
		t.Run(tc.decision, func(t *testing.T) {
			r := newApprovalRig(t)

			// The request goes out; the service has not queued it yet.
			r.tick()
			if s := r.step("approve"); s.Phase != v1alpha1.WorkflowStepPhaseRunning || s.Reason != engine.ReasonWait {
				t.Fatalf("after the first tick approve is %s (%s) %q, want running (Wait)", s.Phase, s.Reason, s.Message)
			}
			if got := r.srv.count("GET /approvals/t1"); got != 1 {
				t.Fatalf("GET poll hit %d times, want 1", got)
			}
			// A waiting step polls on every tick; the POST is replayed.
			r.reticks(50, 1)
			r.checkAsked(1)

			// An approver has it: the step suspends and is left alone.
			r.srv.setAnswer("pending")
			r.tick()
			if s := r.step("approve"); s.Phase != v1alpha1.WorkflowStepPhaseSuspending || s.Message != "waiting for the approver of t1" {
				t.Fatalf("approve is %s (%s) %q, want suspending, waiting for the approver of t1", s.Phase, s.Reason, s.Message)
			}
			if r.run.Status.Phase != v1alpha1.WorkflowRunSuspending {
				t.Fatalf("run is %s, want suspending", r.run.Status.Phase)
			}
			r.reticks(50, 0)
			r.checkAsked(1)

			// The approver decides; the API sets the context and resumes.
			r.operate(func(st *v1alpha1.WorkflowRunStatus) error {
				return engine.SetContext(st, r.j, "decision", tc.decision)
			})
			r.operate(func(st *v1alpha1.WorkflowRunStatus) error { return engine.Resume(st, "") })
			r.tick()
			if tc.terminate {
				if s := r.step("approve"); s.Phase != v1alpha1.WorkflowStepPhaseSuspending || s.Message != "stopped by the approver" {
					t.Fatalf("approve is %s (%s) %q, want suspending, stopped by the approver", s.Phase, s.Reason, s.Message)
				}
				r.operate(func(st *v1alpha1.WorkflowRunStatus) error { return engine.Terminate(st, "", r.now) })
				r.tick()
			}
			if !r.run.Status.Finished {
				t.Fatalf("run is not finished: %s", r.phases())
			}
			r.reticks(50, 0)

			w := tc.want
			approve, promote := r.step("approve"), r.step("promote")
			got := want{run: r.run.Status.Phase,
				approve: approve.Phase, approveReason: approve.Reason, approveMessage: approve.Message,
				promote: promote.Phase, promoteReason: promote.Reason, promoteHits: r.srv.count("POST /promote")}
			if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			r.checkAsked(1)
			if got := r.srv.count("GET /approvals/t1"); got != 1+50+1+1 {
				t.Errorf("GET poll hit %d times, want %d (each evaluation once)", got, 1+50+1+1)
			}
		})
	}
}

// TestApprovalCrashWindow loses the journal record of the approval
// request: the request is sent again, with the same Idempotency-Key, and the
// service, which honours the key, files one ticket.
func TestApprovalCrashWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		// failSaves is how many journal Saves fail from the first tick on.
		failSaves int
		// crash: the first tick's status is lost, as when the controller
		// dies before it patches the status.
		crash bool
	}{
		{name: "controller dies before the status patch", failSaves: 1, crash: true},
		{name: "journal save fails", failSaves: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newApprovalRig(t)
			r.store.FailSaves(tc.failSaves)
			before := r.saved
			if err := r.tryTick(); err != nil {
				t.Fatalf("tick: %v", err)
			}
			if tc.crash {
				r.saved = before
				r.boot()
			}
			if got := r.srv.count("POST /approvals"); got != 1 {
				t.Fatalf("POST /approvals hit %d times in the first tick, want 1", got)
			}
			for i := 0; i < 10 && r.srv.count("POST /approvals") < 2; i++ {
				r.tick()
			}
			r.reticks(50, 1)

			keys := r.srv.keysOf("POST /approvals")
			if len(keys) != 2 {
				t.Fatalf("POST /approvals hit %d times, want 2 (the lost record makes it repeat once)", len(keys))
			}
			if keys[0] != keys[1] {
				a := r.step("approve")
				t.Errorf("the repeated approval request carried Idempotency-Key %s, the first %s; want the same key "+
					"(approve is attempt %d, reason %s: %q)", keys[1], keys[0], a.Attempt, a.Reason, a.Message)
			}
			if a := r.step("approve"); a.Attempt != 1 {
				t.Errorf("approve is attempt %d after the lost record, want 1: a lost record is no reason for a new attempt", a.Attempt)
			}
			r.srv.mu.Lock()
			tickets := len(r.srv.tickets)
			r.srv.mu.Unlock()
			if tickets != 1 {
				t.Errorf("the service filed %d tickets, want 1", tickets)
			}
			r.checkAsked(2)
		})
	}
}

// TestApprovalRestartAsksAgain: Restart starts a new attempt of every step,
// so the approval request goes out once more, under a new key.
func TestApprovalRestartAsksAgain(t *testing.T) {
	r := newApprovalRig(t)
	r.srv.setAnswer("approved")
	r.tick()
	if r.run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run is %s, want succeeded: %s", r.run.Status.Phase, r.phases())
	}
	first := r.step("approve").ID
	r.operate(func(st *v1alpha1.WorkflowRunStatus) error { engine.Restart(st); return nil })
	r.tick()
	r.reticks(10, 0)
	if r.run.Status.Phase != v1alpha1.WorkflowRunSucceeded || r.run.Status.RestartCount != 1 {
		t.Fatalf("after the restart the run is %s, restartCount %d: %s", r.run.Status.Phase, r.run.Status.RestartCount, r.phases())
	}
	second := r.step("approve").ID
	if first == second {
		t.Fatalf("the restarted attempt kept id %s", first)
	}
	keys := r.srv.keysOf("POST /approvals")
	want := []string{
		httpop.IdempotencyKey(op.Step{RunUID: string(r.run.UID), StepID: first}, "ask"),
		httpop.IdempotencyKey(op.Step{RunUID: string(r.run.UID), StepID: second}, "ask"),
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("Idempotency-Keys of POST /approvals (-want +got):\n%s", diff)
	}
	if got := r.srv.count("POST /promote"); got != 2 {
		t.Errorf("POST /promote hit %d times, want 2 (once per run)", got)
	}
}

// TestApprovalPollErrorStartsNewAttempt pins down the rule that a retry
// after an op error is a new attempt (see the package doc): a GET poll that
// gets no response makes the engine retry the step as a new attempt, which
// sends the approval request again under a new key, and the service files
// a second ticket. Change this test if that rule changes.
func TestApprovalPollErrorStartsNewAttempt(t *testing.T) {
	r := newApprovalRig(t)
	r.tick()
	first := r.step("approve").ID
	// net/http sends a GET again, once, when a reused connection closes
	// before the response; two drops make the poll fail.
	r.srv.dropNextGets(2)
	r.tick()
	a := r.step("approve")
	if a.Reason != engine.ReasonError || a.Attempt != 2 {
		t.Fatalf("after the dropped poll approve is attempt %d (%s) %q, want attempt 2 (Error)", a.Attempt, a.Reason, a.Message)
	}
	for i := 0; i < 5; i++ {
		r.tick()
	}
	second := r.step("approve").ID
	want := []string{
		httpop.IdempotencyKey(op.Step{RunUID: string(r.run.UID), StepID: first}, "ask"),
		httpop.IdempotencyKey(op.Step{RunUID: string(r.run.UID), StepID: second}, "ask"),
	}
	if diff := cmp.Diff(want, r.srv.keysOf("POST /approvals")); diff != "" {
		t.Errorf("Idempotency-Keys of POST /approvals (-want +got):\n%s", diff)
	}
	if got := r.srv.count("GET /approvals/t2"); got == 0 {
		t.Errorf("the new attempt does not poll its own ticket t2")
	}
}
