package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

// hostileStepNames are step names a template must still be able to name
// objects after through context.stepSessionID.
var hostileStepNames = []string{
	"Enable Prism",
	"enable prism",
	"ENABLE PRISM",
	"enable-prism",
	"Enable_Prism",
	"部署 生产",
	"déployer",
	"🚀",
	"-",
	"a.b/c:d",
	" leading and trailing ",
	strings.Repeat("a", 300),
	strings.Repeat("a", 299) + "b",
	strings.Repeat("A", 300),
}

// TestStepIDIsADNSLabel: every attempt id is a lowercase DNS-1123 label of
// StepIDLength characters (also a DNS-1035 label and a label value), ids of
// different steps, attempts, restarts and runs are distinct, and the same
// attempt always gets the same id.
func TestStepIDIsADNSLabel(t *testing.T) {
	seen := map[string]string{}
	for _, uid := range []string{"2f0c6d1e-0f59-4d3a-9d55-5c1f0b7c2a10", "8b1e0a2c-4c8e-47a4-8d6c-0e1b2f3a4c5d"} {
		for restarts := int32(0); restarts < 2; restarts++ {
			for _, name := range hostileStepNames {
				for attempt := int32(1); attempt <= 3; attempt++ {
					id := engine.StepID(uid, restarts, name, attempt)
					what := uid[:8] + "/" + string(rune('0'+restarts)) + "/" + name + "/" + string(rune('0'+attempt))
					if errs := validation.IsDNS1123Label(id); len(errs) != 0 {
						t.Errorf("step %q attempt %d: id %q is not a DNS-1123 label: %v", name, attempt, id, errs)
					}
					if errs := validation.IsDNS1035Label(id); len(errs) != 0 {
						t.Errorf("step %q attempt %d: id %q is not a DNS-1035 label: %v", name, attempt, id, errs)
					}
					if errs := validation.IsValidLabelValue(id); len(errs) != 0 {
						t.Errorf("step %q attempt %d: id %q is not a label value: %v", name, attempt, id, errs)
					}
					if len(id) != engine.StepIDLength {
						t.Errorf("step %q attempt %d: id %q has %d characters, want %d", name, attempt, id, len(id), engine.StepIDLength)
					}
					if again := engine.StepID(uid, restarts, name, attempt); again != id {
						t.Errorf("step %q attempt %d: id %q, then %q", name, attempt, id, again)
					}
					if other, dup := seen[id]; dup {
						t.Errorf("id %q for both %q and %q", id, other, what)
					}
					seen[id] = what
				}
			}
		}
	}
}

// sessionServer records, per POST, the body (the template's
// context.stepSessionID) and the Idempotency-Key.
type sessionServer struct {
	*httptest.Server
	mu    sync.Mutex
	posts []sessionPost
}

type sessionPost struct{ body, key string }

func newSessionServer(t *testing.T) *sessionServer {
	s := &sessionServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.posts = append(s.posts, sessionPost{string(b), r.Header.Get(httpop.IdempotencyHeader)})
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sessionServer) sent() []sessionPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sessionPost(nil), s.posts...)
}

// TestStepSessionIDEffectOncePerAttempt: steps with hostile names (two
// differing only in case) POST their context.stepSessionID. Each attempt
// sends its POST once, even when the first tick's status write is lost and
// the attempt is evaluated again (replayed from the journal under the same
// id); the ids are DNS labels; a retry from a step is a new attempt with a
// new id and a new Idempotency-Key.
func TestStepSessionIDEffectOncePerAttempt(t *testing.T) {
	srv := newSessionServer(t)
	reg := op.NewRegistry().Add(builtin.New(), httpop.New(httpop.Options{}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := json.Marshal(map[string]string{"url": srv.URL})
	names := []string{"Enable Prism", "enable prism", "部署", strings.Repeat("x", 300)}
	run := v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "sessions", Namespace: "ns", UID: "uid-sessions"}}
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{}
	for _, n := range names {
		run.Spec.WorkflowSpec.Steps = append(run.Spec.WorkflowSpec.Steps, v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{
			Name: n, Type: "post-session", Properties: &runtime.RawExtension{Raw: props}}})
	}
	defs := engine.DefinitionMap{"post-session": {Name: "post-session", Template: `
import "vela/op"

post: op.#HTTPPost & {
	url: parameter.url
	request: body: context.stepSessionID
}
parameter: url: string
`}}
	store := journal.NewMemory()
	tick := func(st v1alpha1.WorkflowRunStatus) v1alpha1.WorkflowRunStatus {
		t.Helper()
		j, err := journal.Open(context.Background(), store, journal.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		r := run.DeepCopy()
		r.Status = st
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: r, Steps: r.Spec.WorkflowSpec.Steps, Definitions: defs, Evaluator: ev,
			Ops: op.Direct, Journal: j, Now: func() time.Time { return t0 },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}

	lost := tick(v1alpha1.WorkflowRunStatus{}) // its status write is lost
	st := tick(v1alpha1.WorkflowRunStatus{})   // the same attempts again
	if st.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("run %s: %s", st.Phase, st.Message)
	}
	posts := srv.sent()
	if len(posts) != len(names) {
		t.Fatalf("%d POSTs after the same attempts were evaluated twice, want %d (one per attempt): %v", len(posts), len(names), posts)
	}
	ids := map[string]bool{}
	for i, ss := range st.Steps {
		if lost.Steps[i].ID != ss.ID {
			t.Errorf("step %q: id %q, then %q for the same attempt", ss.Name, lost.Steps[i].ID, ss.ID)
		}
		if errs := validation.IsDNS1123Label(ss.ID); len(errs) != 0 {
			t.Errorf("step %q: context.stepSessionID %q: %v", ss.Name, ss.ID, errs)
		}
		ids[ss.ID] = true
	}
	for _, p := range posts {
		if !ids[p.body] {
			t.Errorf("POST body %q is not one of the attempts' ids %v", p.body, ids)
		}
	}
	if len(ids) != len(names) {
		t.Errorf("%d distinct ids for %d steps: %v", len(ids), len(names), ids)
	}

	// A retry from the first step: in StepByStep mode every step is
	// downstream of it, so each gets a new attempt, with a new id, and
	// sends a new POST under a new Idempotency-Key.
	g, err := graph.Build(run.Spec.WorkflowSpec.Steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(context.Background(), store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.RetryFrom(&st, g, names[0], j); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = tick(st)
	posts = srv.sent()
	if len(posts) != 2*len(names) {
		t.Fatalf("%d POSTs after a retry from %q, want %d", len(posts), names[0], 2*len(names))
	}
	keys := map[string]bool{}
	for _, p := range posts[:len(names)] {
		keys[p.key] = true
	}
	for i, p := range posts[len(names):] {
		if ids[p.body] || validation.IsDNS1123Label(p.body) != nil || keys[p.key] {
			t.Errorf("retried attempt %d sent id %q, key %q: want a new DNS label and a new key (earlier ids %v)", i, p.body, p.key, ids)
		}
	}
	for _, ss := range st.Steps {
		if ss.Attempt != 2 || ids[ss.ID] {
			t.Errorf("step %q after the retry: attempt %d, id %q", ss.Name, ss.Attempt, ss.ID)
		}
	}
}
