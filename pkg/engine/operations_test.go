package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// opsDefinitions: "echo" sends an effect carrying the run context variable
// flag ("none" when the run has none); "halt" suspends until resumed.
var opsDefinitions = engine.DefinitionMap{
	"echo": {Name: "echo", Template: "context: flag: *\"none\" | string\npost: {#provider: \"fz\", #do: \"effect\", id: context.flag}"},
	"halt": fuzzDefinitions["halt"],
	"ok":   fuzzDefinitions["ok"],
}

// sent is one effect an echo step sent: the attempt and the flag it saw.
type sent struct{ step, id, flag string }

// opsRig ticks a run of fz steps with a journal in memory, recording the
// effects sent.
type opsRig struct {
	t     *testing.T
	ev    *eval.Evaluator
	run   *v1alpha1.WorkflowRun
	steps []v1alpha1.WorkflowStep
	g     *graph.Graph
	j     *journal.Journal
	store *journal.Memory
	now   time.Time

	mu   sync.Mutex
	sent []sent
}

func newOpsRig(t *testing.T, steps ...v1alpha1.WorkflowStep) *opsRig {
	t.Helper()
	ev, err := eval.New(eval.Options{Ops: fuzzCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Build(steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := journal.NewMemory()
	r := &opsRig{t: t, ev: ev, steps: steps, g: g, store: store, now: fuzzT0,
		j: journal.New(journal.Data{}, store, journal.Limits{}),
		run: &v1alpha1.WorkflowRun{
			ObjectMeta: metav1.ObjectMeta{Name: "ops", Namespace: "default", UID: "uid-ops"},
			Spec:       v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps}},
		}}
	return r
}

func (r *opsRig) runner() op.Runner {
	return op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
		p := call.Params.(*fuzzParams)
		switch call.Name.Do {
		case "effect":
			r.mu.Lock()
			r.sent = append(r.sent, sent{step: call.Step.StepName, id: call.Step.StepID, flag: p.ID})
			r.mu.Unlock()
			return op.Result{Returns: map[string]any{"id": p.ID}}, nil
		case "suspend":
			return op.Result{Stop: &op.Stop{Kind: op.Suspend}}, nil
		}
		return op.Result{}, nil
	})
}

// tick runs one tick and saves its journal, as the controller does.
func (r *opsRig) tick() {
	r.t.Helper()
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: r.run, Steps: r.steps, Definitions: opsDefinitions, Evaluator: r.ev, Ops: r.runner(), Journal: r.j,
		Now: func() time.Time { return r.now },
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.j.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.run.Status = res.Status
	r.now = r.now.Add(time.Second)
}

// settle ticks until the run is finished or suspended.
func (r *opsRig) settle() {
	r.t.Helper()
	for i := 0; i < 20; i++ {
		r.tick()
		if r.run.Status.Finished || r.run.Status.Phase == v1alpha1.WorkflowRunSuspending {
			return
		}
	}
	r.t.Fatalf("run neither finished nor suspended: %s", r.run.Status.Phase)
}

func (r *opsRig) step(name string) v1alpha1.StepStatus {
	for _, s := range r.run.Status.Steps {
		if s.Name == name {
			return s.StepStatus
		}
	}
	return v1alpha1.StepStatus{}
}

func (r *opsRig) sentBy(step string) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sent
	for _, s := range r.sent {
		if s.step == step {
			out = append(out, s)
		}
	}
	return out
}

func leaf(name, typ string, deps ...string) v1alpha1.WorkflowStep {
	return v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: name, Type: typ, DependsOn: deps}}
}

// A retry from step b gives b, and the steps after it, the context b saw on
// its last attempt, not the context set after it ran; b's re-run is a new
// attempt (new id), so its effect is sent again.
func TestRetryFromRestoresContextSnapshot(t *testing.T) {
	r := newOpsRig(t, leaf("b", "echo"), leaf("h", "halt"), leaf("c", "echo"))
	r.run.Spec.Mode = &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}
	r.g, _ = graph.Build(r.steps, r.run.Spec.Mode)
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "one"); err != nil {
		t.Fatal(err)
	}
	r.settle() // b sends "one", h suspends
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "two"); err != nil {
		t.Fatal(err)
	}
	if err := engine.Resume(&r.run.Status, ""); err != nil {
		t.Fatal(err)
	}
	r.settle() // c sends "two"
	if !r.run.Status.Finished {
		t.Fatalf("run %s, want finished", r.run.Status.Phase)
	}
	firstB := r.step("b").ID
	if got := r.sentBy("c"); len(got) != 1 || got[0].flag != "two" {
		t.Fatalf("c sent %v, want once with flag two", got)
	}

	if err := engine.RetryFrom(&r.run.Status, r.g, "b", r.j); err != nil {
		t.Fatal(err)
	}
	if err := r.j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.settle() // b again, h suspends again
	b := r.sentBy("b")
	if len(b) != 2 || b[1].flag != "one" {
		t.Fatalf("b sent %v, want a second time with flag one (what it saw)", b)
	}
	if b[1].id == firstB || b[1].id == "" {
		t.Errorf("b's re-run has attempt id %q, its first had %q: want a new one", b[1].id, firstB)
	}
	if err := engine.Resume(&r.run.Status, ""); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if c := r.sentBy("c"); len(c) != 2 || c[1].flag != "one" {
		t.Errorf("c sent %v, want a second time with flag one (the context b saw)", c)
	}
}

// A step that ran while the run had no variables has no snapshot; a retry
// from it removes the variables set since, and a run without variables
// never records a snapshot.
func TestRetryFromWithoutVariables(t *testing.T) {
	r := newOpsRig(t, leaf("b", "echo"), leaf("h", "halt", "b"))
	r.settle()
	if d := r.j.Data(); len(d.SnapshotKeys) != 0 || len(d.SnapshotValues) != 0 || len(d.Vars) != 0 {
		t.Fatalf("a run without variables holds snapshots %v", d.SnapshotKeys)
	}
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "later"); err != nil {
		t.Fatal(err)
	}
	if err := engine.Terminate(&r.run.Status, "", r.now); err != nil {
		t.Fatal(err)
	}
	if err := engine.RetryFrom(&r.run.Status, r.g, "b", r.j); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if b := r.sentBy("b"); len(b) != 2 || b[1].flag != "none" {
		t.Errorf("b sent %v, want a second time with flag none (it saw no variables)", b)
	}
}

// The snapshot of a finished step's last attempt outlives the ticks after
// it (Retain drops finished attempts' entries, not this) until a retry of
// the step is saved.
func TestSnapshotKeptForFinishedStep(t *testing.T) {
	r := newOpsRig(t, leaf("b", "echo"), leaf("h", "halt", "b"))
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "one"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.tick()
	r.tick()
	id := r.step("b").ID
	if v, ok, _ := r.j.SnapshotOf(id); !ok || v["flag"] != "one" {
		t.Fatalf("snapshot of b's finished attempt after more ticks: %v %v", v, ok)
	}
	saved, err := r.store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if saved.SnapshotValues[saved.SnapshotKeys[id]]["flag"] != "one" {
		t.Errorf("the store holds snapshots %v %v, want b's", saved.SnapshotKeys, saved.SnapshotValues)
	}
}

func TestRetryAndRetryFromNeedAFinishedRun(t *testing.T) {
	r := newOpsRig(t, leaf("b", "echo"), leaf("h", "halt", "b"))
	r.settle() // suspended
	if err := engine.Retry(&r.run.Status); !errors.Is(err, engine.ErrNotFinished) {
		t.Errorf("retry of a suspended run: %v, want ErrNotFinished", err)
	}
	if err := engine.RetryFrom(&r.run.Status, r.g, "b", r.j); !errors.Is(err, engine.ErrNotFinished) {
		t.Errorf("retry from b of a suspended run: %v, want ErrNotFinished", err)
	}
	if err := engine.Terminate(&r.run.Status, "", r.now); err != nil {
		t.Fatal(err)
	}
	if err := engine.Retry(&r.run.Status); err != nil {
		t.Fatalf("retry of a terminated run: %v", err)
	}
	if st := r.run.Status; st.RestartCount != 1 || len(st.Steps) != 0 || st.Finished {
		t.Errorf("after retry: restarts %d, %d step statuses, finished %v; want a restart from the first step", st.RestartCount, len(st.Steps), st.Finished)
	}
	r.settle()
	if b := r.sentBy("b"); len(b) != 2 || b[0].id == b[1].id {
		t.Errorf("b sent %v, want twice under two attempt ids", b)
	}
}

func TestSetContextRefusesReservedKeys(t *testing.T) {
	j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
	for _, key := range engine.ReservedContextKeys {
		err := engine.SetContext(&v1alpha1.WorkflowRunStatus{}, j, key, "x")
		if !errors.Is(err, engine.ErrReservedKey) {
			t.Errorf("SetContext %q: %v, want ErrReservedKey", key, err)
		}
	}
	if len(j.Vars()) != 0 {
		t.Errorf("variables set: %v", j.Vars())
	}
}

// The step operations with a message act on a step whatever its state
// (see the table in operations.go).
func TestStepOperations(t *testing.T) {
	type opFn func(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, step, msg string) error
	terminate := func(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, step, msg string) error {
		return engine.TerminateStep(st, g, step, msg, fuzzT0)
	}
	for _, tc := range []struct {
		name      string
		phase     v1alpha1.WorkflowStepPhase // "": no status yet
		op        opFn
		wantErr   error
		wantPhase v1alpha1.WorkflowStepPhase
		wantMsg   bool
	}{
		{"terminate pending", "", terminate, nil, v1alpha1.WorkflowStepPhaseFailed, true},
		{"terminate running", v1alpha1.WorkflowStepPhaseRunning, terminate, nil, v1alpha1.WorkflowStepPhaseFailed, true},
		{"terminate suspended", v1alpha1.WorkflowStepPhaseSuspending, terminate, nil, v1alpha1.WorkflowStepPhaseFailed, true},
		{"terminate finished: no-op", v1alpha1.WorkflowStepPhaseSucceeded, terminate, nil, v1alpha1.WorkflowStepPhaseSucceeded, false},
		{"suspend pending: held", "", engine.SuspendStep, nil, v1alpha1.WorkflowStepPhaseSuspending, true},
		{"suspend running", v1alpha1.WorkflowStepPhaseRunning, engine.SuspendStep, nil, v1alpha1.WorkflowStepPhaseSuspending, true},
		{"suspend finished", v1alpha1.WorkflowStepPhaseSucceeded, engine.SuspendStep, engine.ErrStepFinished, v1alpha1.WorkflowStepPhaseSucceeded, false},
		{"resume suspended", v1alpha1.WorkflowStepPhaseSuspending, engine.ResumeStep, nil, v1alpha1.WorkflowStepPhaseRunning, true},
		{"resume running", v1alpha1.WorkflowStepPhaseRunning, engine.ResumeStep, engine.ErrNotSuspended, v1alpha1.WorkflowStepPhaseRunning, false},
		{"resume pending", "", engine.ResumeStep, engine.ErrNotSuspended, "", false},
		{"unknown step", v1alpha1.WorkflowStepPhaseRunning, func(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, _, msg string) error {
			return engine.SuspendStep(st, g, "nope", msg)
		}, engine.ErrNoStep, v1alpha1.WorkflowStepPhaseRunning, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := graph.Build([]v1alpha1.WorkflowStep{leaf("a", "ok")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			st := &v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting}
			if tc.phase != "" {
				st.Steps = []v1alpha1.WorkflowStepStatus{{StepStatus: v1alpha1.StepStatus{ID: "a-1", Name: "a", Type: "ok", Phase: tc.phase}}}
			}
			err = tc.op(st, g, "a", "by the book")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			var got v1alpha1.StepStatus
			if len(st.Steps) > 0 {
				got = st.Steps[0].StepStatus
			}
			if got.Phase != tc.wantPhase {
				t.Errorf("phase %q, want %q", got.Phase, tc.wantPhase)
			}
			if (got.ExtMessage == "by the book") != tc.wantMsg {
				t.Errorf("extMessage %q, want recorded: %v", got.ExtMessage, tc.wantMsg)
			}
		})
	}
	// On a finished run, terminate is a no-op and the others refuse.
	g, _ := graph.Build([]v1alpha1.WorkflowStep{leaf("a", "ok")}, nil)
	st := &v1alpha1.WorkflowRunStatus{Finished: true, Phase: v1alpha1.WorkflowRunSucceeded}
	if err := engine.TerminateStep(st, g, "a", "", fuzzT0); err != nil || len(st.Steps) != 0 {
		t.Errorf("terminate a step of a finished run: %v, %v", err, st.Steps)
	}
	if err := engine.SuspendStep(st, g, "a", ""); !errors.Is(err, engine.ErrFinished) {
		t.Errorf("suspend a step of a finished run: %v", err)
	}
}

// A step suspended before it started does not start, even once its
// dependencies are done, until it is resumed; then it starts after them.
// Its timeout counts from its start, not from its hold.
func TestHeldStepWaitsForResume(t *testing.T) {
	b := leaf("b", "echo", "a")
	b.Timeout = "1h"
	r := newOpsRig(t, leaf("a", "halt"), b, leaf("c", "echo", "b"))
	if err := engine.SuspendStep(&r.run.Status, r.g, "b", "hold b"); err != nil {
		t.Fatal(err)
	}
	r.settle() // a suspends
	if err := engine.Resume(&r.run.Status, "a"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r.tick()
	}
	if a, b := r.step("a"), r.step("b"); a.Phase != v1alpha1.WorkflowStepPhaseSucceeded || b.Phase != v1alpha1.WorkflowStepPhaseSuspending || b.ID != "" {
		t.Fatalf("a %s, b %s (id %q): want a succeeded and b held, not started", a.Phase, b.Phase, b.ID)
	}
	if len(r.sentBy("b")) != 0 || r.run.Status.Finished {
		t.Fatalf("b sent %v, run finished %v, while b is held", r.sentBy("b"), r.run.Status.Finished)
	}
	if err := engine.ResumeStep(&r.run.Status, r.g, "b", "go"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if !r.run.Status.Finished || r.run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s, want succeeded", r.run.Status.Phase)
	}
	if len(r.sentBy("b")) != 1 || len(r.sentBy("c")) != 1 || r.step("b").ExtMessage != "go" {
		t.Errorf("b sent %v, c sent %v, b's extMessage %q", r.sentBy("b"), r.sentBy("c"), r.step("b").ExtMessage)
	}
}

// A held step whose dependency is still running stays pending after its
// resume until the dependency is done.
func TestResumedHeldStepKeepsDependencies(t *testing.T) {
	r := newOpsRig(t, leaf("a", "halt"), leaf("b", "echo", "a"))
	if err := engine.SuspendStep(&r.run.Status, r.g, "b", ""); err != nil {
		t.Fatal(err)
	}
	r.settle() // a suspends
	if err := engine.ResumeStep(&r.run.Status, r.g, "b", ""); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.tick()
	if b := r.step("b"); b.Phase != v1alpha1.WorkflowStepPhasePending || len(r.sentBy("b")) != 0 {
		t.Fatalf("b %s after its resume with a still suspended, sent %v; want pending", b.Phase, r.sentBy("b"))
	}
	if err := engine.Resume(&r.run.Status, "a"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if !r.run.Status.Finished || len(r.sentBy("b")) != 1 {
		t.Errorf("run %s, b sent %v", r.run.Status.Phase, r.sentBy("b"))
	}
}

// A retry from a step group restores what its first sub-step saw.
func TestRetryFromGroupRestoresFirstSubStepSnapshot(t *testing.T) {
	grp := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "g", Type: "step-group"},
		SubSteps: []v1alpha1.WorkflowStepBase{{Name: "b", Type: "echo"}}}
	r := newOpsRig(t, grp, leaf("h", "halt", "g"))
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "one"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if err := engine.SetContext(&r.run.Status, r.j, "flag", "two"); err != nil {
		t.Fatal(err)
	}
	if err := engine.Terminate(&r.run.Status, "", r.now); err != nil {
		t.Fatal(err)
	}
	if err := engine.RetryFrom(&r.run.Status, r.g, "g", r.j); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if b := r.sentBy("b"); len(b) != 2 || b[1].flag != "one" {
		t.Errorf("b sent %v, want a second time with flag one", b)
	}
}

// A restart keeps what the run's callback has not been told yet: the
// transitions before the restart are still owed to it.
func TestRestartKeepsTheCallbackOutbox(t *testing.T) {
	owed := &v1alpha1.CallbackStatus{Outbox: []v1alpha1.CallbackTransition{{Key: "uid/runFailed/0", Event: v1alpha1.CallbackRunFailed}}, LastError: "503"}
	st := v1alpha1.WorkflowRunStatus{Finished: true, Phase: v1alpha1.WorkflowRunFailed, Callback: owed.DeepCopy()}
	if err := engine.Retry(&st); err != nil {
		t.Fatal(err)
	}
	if st.Callback == nil || len(st.Callback.Outbox) != 1 || st.Callback.Outbox[0].Key != "uid/runFailed/0" {
		t.Errorf("after a retry the callback status is %+v, want the outbox kept: %+v", st.Callback, owed)
	}
}
