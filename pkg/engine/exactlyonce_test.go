package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

// notifyDefinition POSTs once per attempt, then GETs /check, which the
// server can make fail (a dropped connection: an op error, so a retry).
const notifyDefinition = `
import "vela/op"

import "encoding/json"

notify: op.#HTTPPost & {url: parameter.url + "/notify"}
check: op.#HTTPGet & {url: parameter.url + "/check?after=\(notify.response.statusCode)"}
wait: op.#ConditionalWait & {continue: json.Unmarshal(check.response.body).ready}
parameter: url: string
`

// onceServer counts POST /notify; GET /check drops the connection while
// failing is set, and answers not ready while holding is set.
type onceServer struct {
	*httptest.Server
	posts   atomic.Int32
	failing atomic.Bool
	holding atomic.Bool
}

func newOnceServer(t *testing.T) *onceServer {
	s := &onceServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/notify":
			s.posts.Add(1)
		case r.URL.Path == "/check" && s.failing.Load():
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case r.URL.Path == "/check" && s.holding.Load():
			_, _ = w.Write([]byte(`{"ready": false}`))
			return
		}
		_, _ = w.Write([]byte(`{"ready": true}`))
	}))
	t.Cleanup(s.Close)
	return s
}

// onceRig keeps a run as the API server has it (saved) and its journal in a
// store, and runs ticks whose status write may be lost.
type onceRig struct {
	t     *testing.T
	srv   *onceServer
	store *journal.Memory
	saved v1alpha1.WorkflowRun
	ev    *eval.Evaluator
	defs  engine.DefinitionMap
	now   time.Time
}

func newOnceRig(t *testing.T, steps ...string) *onceRig {
	srv := newOnceServer(t)
	reg := op.NewRegistry().Add(builtin.New(), builtin.NewLog(), httpop.New(httpop.Options{}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := json.Marshal(map[string]string{"url": srv.URL})
	run := v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: "ns", UID: "uid-once"}}
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{}
	for _, name := range steps {
		run.Spec.WorkflowSpec.Steps = append(run.Spec.WorkflowSpec.Steps, v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{
			Name: name, Type: "notify", Properties: &runtime.RawExtension{Raw: props}}})
	}
	return &onceRig{t: t, srv: srv, store: journal.NewMemory(), saved: run, ev: ev,
		defs: engine.DefinitionMap{"notify": {Name: "notify", Template: notifyDefinition}}, now: t0}
}

// tick runs one tick as a reconcile does: the run and the journal read
// afresh. With save, the new status is written; without, the write is lost
// (a conflict with a resume written meanwhile, or a crash).
func (r *onceRig) tick(save bool) v1alpha1.WorkflowRunStatus {
	r.t.Helper()
	run := r.saved.DeepCopy()
	j, err := journal.Open(context.Background(), r.store, journal.Limits{})
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: run, Steps: run.Spec.WorkflowSpec.Steps, Definitions: r.defs, Evaluator: r.ev,
		Ops: op.Direct, Journal: j, Now: func() time.Time { return r.now },
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if save {
		r.saved.Status = res.Status
	}
	return res.Status
}

func (r *onceRig) entries() []string {
	r.t.Helper()
	d, err := r.store.Load(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for k := range d.Entries {
		out = append(out, k)
	}
	return out
}

// TestRetryWithLostStatusKeepsRecords: a step POSTs, then errors, and the
// tick schedules a retry; its status write is lost. The next tick, on the
// saved status, evaluates the old attempt again: its POST must be replayed,
// not sent again. Once the retry's status is saved, the new attempt sends
// its own POST and the old attempt's record goes.
func TestRetryWithLostStatusKeepsRecords(t *testing.T) {
	r := newOnceRig(t, "a")
	r.srv.failing.Store(true)
	st := r.tick(false)
	if s := st.Steps[0]; s.Reason != engine.ReasonError || r.srv.posts.Load() != 1 {
		t.Fatalf("first tick: step %s/%s, %d POSTs; want a retry scheduled after 1 POST", s.Phase, s.Reason, r.srv.posts.Load())
	}
	firstKeys := r.entries()
	st = r.tick(true)
	if got := r.srv.posts.Load(); got != 1 {
		t.Fatalf("the old attempt evaluated again after its retry's status was lost: %d POSTs, want 1 (replayed)", got)
	}
	r.srv.failing.Store(false)
	r.now = st.Steps[0].NextAttemptTime.Add(time.Second)
	st = r.tick(true)
	if s := st.Steps[0]; s.Phase != v1alpha1.WorkflowStepPhaseSucceeded || r.srv.posts.Load() != 2 {
		t.Fatalf("retry: step %s/%s, %d POSTs; want succeeded after a second POST (a new attempt)", s.Phase, s.Reason, r.srv.posts.Load())
	}
	if len(firstKeys) != 1 || slices.Contains(r.entries(), firstKeys[0]) {
		t.Errorf("the first attempt's entries %v still stored after the retry's status was saved: %v", firstKeys, r.entries())
	}
}

// TestOperationsWithLostStatusKeepRecords: retry-from-step and restart
// (CLI, REST API) whose status write is lost leave the journal as it was,
// so the step's old attempt replays its POST; once their status is saved,
// the next tick drops what they abandoned.
func TestOperationsWithLostStatusKeepRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(st *v1alpha1.WorkflowRunStatus, g *graph.Graph) error
	}{
		// A run retries from a step once it is finished: here, terminated.
		{"retry from a step", func(st *v1alpha1.WorkflowRunStatus, g *graph.Graph) error {
			if err := engine.Terminate(st, "", time.Time{}); err != nil {
				return err
			}
			return engine.RetryFrom(st, g, "a", nil)
		}},
		{"restart", func(st *v1alpha1.WorkflowRunStatus, g *graph.Graph) error { engine.Restart(st); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newOnceRig(t, "a")
			r.srv.holding.Store(true)
			st := r.tick(true) // a sends its POST and waits
			if s := st.Steps[0]; s.Reason != engine.ReasonWait || r.srv.posts.Load() != 1 {
				t.Fatalf("step %s/%s, %d POSTs; want waiting after 1 POST", s.Phase, s.Reason, r.srv.posts.Load())
			}
			firstID := st.Steps[0].ID
			j, err := journal.Open(context.Background(), r.store, journal.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := engine.SetContext(&st, j, "v", "set before"); err != nil {
				t.Fatal(err)
			}
			if err := j.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The operation's status write is lost: the controller goes on
			// with the saved status (a's first attempt, not yet retried).
			op := r.saved.Status.DeepCopy()
			g, err := graph.Build(r.saved.Spec.WorkflowSpec.Steps, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.op(op, g); err != nil {
				t.Fatal(err)
			}
			r.now = r.now.Add(time.Minute)
			r.tick(false)
			if got := r.srv.posts.Load(); got != 1 {
				t.Fatalf("after the lost operation: %d POSTs, want 1 (the old attempt replayed)", got)
			}
			d, _ := r.store.Load(context.Background())
			if d.Vars["v"] != "set before" {
				t.Errorf("variables after the lost operation: %v", d.Vars)
			}
			// Now the operation's status is saved.
			r.saved.Status = *op
			r.tick(true)
			if got := r.srv.posts.Load(); got != 2 {
				t.Errorf("after the operation's status was saved: %d POSTs, want 2 (a new attempt)", got)
			}
			for _, k := range r.entries() {
				if strings.HasPrefix(k, firstID+"/") {
					t.Errorf("entry %s of the abandoned attempt still stored", k)
				}
			}
			d, _ = r.store.Load(context.Background())
			if tc.name == "restart" && len(d.Vars) != 0 {
				t.Errorf("variables set before the restart kept after it: %v", d.Vars)
			}
		})
	}
}

// TestJournalFailuresAreBounded: while the journal cannot be saved, each
// evaluation of the attempt may send its effect again; after
// MaxJournalFailures the step fails with reason JournalError, and no more
// effects go out.
func TestJournalFailuresAreBounded(t *testing.T) {
	r := newOnceRig(t, "a")
	r.store.FailSaves(1000)
	var st v1alpha1.WorkflowRunStatus
	for i := 0; i < 3*engine.MaxJournalFailures; i++ {
		st = r.tick(true)
		if st.Finished {
			break
		}
		if next := st.Steps[0].NextAttemptTime; next != nil {
			r.now = next.Time
		}
	}
	s := st.Steps[0]
	if s.Phase != v1alpha1.WorkflowStepPhaseFailed || s.Reason != engine.ReasonJournal {
		t.Fatalf("step %s/%s (%q) after %d POSTs; want failed with reason %s", s.Phase, s.Reason, s.Message, r.srv.posts.Load(), engine.ReasonJournal)
	}
	if got := r.srv.posts.Load(); got != engine.MaxJournalFailures {
		t.Errorf("%d POSTs, want %d (one per evaluation up to the bound)", got, engine.MaxJournalFailures)
	}
	if !strings.Contains(s.Message, `step "a"`) || !strings.Contains(s.Message, "could not be saved") {
		t.Errorf("message %q does not say which step and what failed", s.Message)
	}
}
