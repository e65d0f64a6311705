package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

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

// undoServer counts POST /do and POST /undo; GET /undone answers "no" until done is set.
type undoServer struct {
	*httptest.Server
	dos, undos atomic.Int32
	done       atomic.Bool
}

func newUndoServer(t *testing.T) *undoServer {
	s := &undoServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/do":
			s.dos.Add(1)
		case r.Method == http.MethodPost && r.URL.Path == "/undo":
			s.undos.Add(1)
		case r.URL.Path == "/undone" && !s.done.Load():
			_, _ = w.Write([]byte("no"))
			return
		}
		_, _ = w.Write([]byte("yes"))
	}))
	t.Cleanup(s.Close)
	return s
}

const (
	doDefinition = `
import "vela/op"

do: op.#HTTPPost & {url: parameter.url + "/do"}
parameter: url: string
`
	// undoDefinition POSTs the undo once per attempt, then waits until the
	// server says it is done.
	undoDefinition = `
import "vela/op"

undo: op.#HTTPPost & {url: parameter.url + "/undo"}
check: op.#HTTPGet & {url: parameter.url + "/undone?after=\(undo.response.statusCode)"}
wait: op.#ConditionalWait & {continue: check.response.body == "yes"}
parameter: url: string
`
	failDefinition = `
import "vela/op"

fail: op.#Fail & {message: "it broke"}
`
)

// TestCompensationEffectsOnceUnderLostStatus: a run with onFailure:
// Compensate fails; in the same tick its rollback begins and the
// compensation POSTs its undo, then waits; that tick's status write is
// lost. Ticks on the saved status (nothing began, as far as it says) run
// the step again (replayed) and begin the rollback again: the undo is
// replayed from the journal, not sent again; repeated ticks while it
// waits send nothing either.
func TestCompensationEffectsOnceUnderLostStatus(t *testing.T) {
	srv := newUndoServer(t)
	reg := op.NewRegistry().Add(builtin.New(), builtin.NewLog(), httpop.New(httpop.Options{}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := json.Marshal(map[string]string{"url": srv.URL})
	saved := v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "saga", Namespace: "ns", UID: "uid-saga"}}
	saved.Spec.OnFailure = v1alpha1.FailurePolicyCompensate
	saved.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "a", Type: "do", Properties: &runtime.RawExtension{Raw: props}}},
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "b", Type: "fail"}},
	}}
	defs := engine.DefinitionMap{
		"do":   {Name: "do", Template: doDefinition, Compensate: &eval.Compensation{Type: "undo"}},
		"undo": {Name: "undo", Template: undoDefinition},
		"fail": {Name: "fail", Template: failDefinition},
	}
	store := journal.NewMemory()
	now := t0
	tick := func(save bool) v1alpha1.WorkflowRunStatus {
		t.Helper()
		run := saved.DeepCopy()
		j, err := journal.Open(context.Background(), store, journal.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: run, Steps: run.Spec.WorkflowSpec.Steps, Definitions: defs, Evaluator: ev,
			Ops: op.Direct, Journal: j, Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		if save {
			saved.Status = res.Status
		}
		return res.Status
	}

	st := tick(false)
	if st.Phase != v1alpha1.WorkflowRunRollingBack || srv.undos.Load() != 1 {
		t.Fatalf("first tick: run %s, %d undos; want rollingBack after 1 undo", st.Phase, srv.undos.Load())
	}
	for i := 0; i < 3; i++ {
		now = now.Add(time.Second)
		st = tick(true)
	}
	cs := st.Steps[0].Compensation
	if st.Phase != v1alpha1.WorkflowRunRollingBack || cs == nil || cs.Reason != engine.ReasonWait {
		t.Fatalf("run %s, compensation %+v; want rollingBack, the compensation waiting", st.Phase, cs)
	}
	if srv.dos.Load() != 1 || srv.undos.Load() != 1 {
		t.Fatalf("after the lost status and 3 ticks: %d dos, %d undos; want 1 and 1 (replayed from the journal)", srv.dos.Load(), srv.undos.Load())
	}
	if cs.ID != engine.CompensationID(st.Steps[0].ID, 1) || cs.ID == st.Steps[0].ID {
		t.Errorf("compensation id %q; want CompensationID of the step's id %q, distinct from it", cs.ID, st.Steps[0].ID)
	}
	srv.done.Store(true)
	now = now.Add(time.Minute)
	st = tick(true)
	if st.Phase != v1alpha1.WorkflowRunRolledBack || !st.Finished || srv.undos.Load() != 1 {
		t.Fatalf("run %s (finished %v), %d undos; want rolledBack after 1 undo", st.Phase, st.Finished, srv.undos.Load())
	}
}

func TestResolveOrchestration(t *testing.T) {
	cb := &v1alpha1.Callback{URL: "http://wf.example"}
	wf := &v1alpha1.Workflow{Orchestration: v1alpha1.Orchestration{
		Queue: "wf-q", OnFailure: v1alpha1.FailurePolicyCompensate, OnTerminate: v1alpha1.FailurePolicyCompensate, Callback: cb}}
	for _, tc := range []struct {
		name string
		own  v1alpha1.Orchestration
		wf   *v1alpha1.Workflow
		want v1alpha1.Orchestration
	}{
		{"own spec only", v1alpha1.Orchestration{OnFailure: v1alpha1.FailurePolicyCompensate}, nil,
			v1alpha1.Orchestration{OnFailure: v1alpha1.FailurePolicyCompensate}},
		{"workflow's under an empty run", v1alpha1.Orchestration{}, wf, wf.Orchestration},
		{"run's fields win one by one", v1alpha1.Orchestration{Queue: "mine", OnFailure: v1alpha1.FailurePolicyNone}, wf,
			v1alpha1.Orchestration{Queue: "mine", OnFailure: v1alpha1.FailurePolicyNone, OnTerminate: v1alpha1.FailurePolicyCompensate, Callback: cb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := &v1alpha1.WorkflowRun{}
			run.Spec.Orchestration = tc.own
			got := engine.ResolveOrchestration(run, tc.wf)
			if got.Queue != tc.want.Queue || got.OnFailure != tc.want.OnFailure || got.OnTerminate != tc.want.OnTerminate || got.Callback != tc.want.Callback {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A Workflow's onFailure applies to a run that names it (Input.Orchestration
// as the controller resolves it); without it, the run fails as usual.
func TestOrchestrationFromInput(t *testing.T) {
	defs := engine.DefinitionMap{
		"do":   {Name: "do", Template: "parameter: {}\n", Compensate: &eval.Compensation{Type: "undo"}},
		"undo": {Name: "undo", Template: "parameter: {}\n"},
		"fail": {Name: "fail", Template: failDefinition},
	}
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(builtin.New())})
	if err != nil {
		t.Fatal(err)
	}
	steps := []v1alpha1.WorkflowStep{
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "a", Type: "do"}},
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "b", Type: "fail"}},
	}
	for _, tc := range []struct {
		orch *v1alpha1.Orchestration
		want v1alpha1.WorkflowRunPhase
	}{
		{nil, v1alpha1.WorkflowRunFailed},
		{&v1alpha1.Orchestration{OnFailure: v1alpha1.FailurePolicyCompensate}, v1alpha1.WorkflowRunRolledBack},
	} {
		run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", UID: "u"}}
		res, err := engine.Tick(context.Background(), engine.Input{Run: run, Steps: steps, Definitions: defs,
			Evaluator: ev, Ops: op.Direct, Now: func() time.Time { return t0 }, Orchestration: tc.orch})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status.Phase != tc.want || !res.Status.Finished {
			t.Errorf("orchestration %+v: run %s (finished %v), want %s", tc.orch, res.Status.Phase, res.Status.Finished, tc.want)
		}
	}
}
