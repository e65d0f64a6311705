package engine_test

import (
	"fmt"

	"context"
	"k8s.io/apimachinery/pkg/runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// interrupting evaluates for real, effects included, and then reports the
// first n evaluations Interrupted, as a pool does when the worker process
// dies after an op call went out.
type interrupting struct {
	*eval.Evaluator
	n atomic.Int32
}

func (e *interrupting) Evaluate(ctx context.Context, req eval.Request) eval.Outcome {
	out := e.Evaluator.Evaluate(ctx, req)
	if e.n.Add(-1) >= 0 {
		return eval.Outcome{Phase: eval.Interrupted, Reason: eval.ReasonInterrupted, Message: "worker died"}
	}
	return out
}

// An interrupted evaluation is the same attempt again a moment later: no
// retry counted, the same id, and the journal replays the effect that went
// out, so it is sent once.
func TestInterruptedEvaluatesTheSameAttemptAgain(t *testing.T) {
	run := &v1alpha1.WorkflowRun{}
	run.Name, run.Namespace, run.UID = "int", "default", "uid"
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "post", Type: "post"}}}}
	ops, posts := countPosts()
	inner := newScenarioEvaluator(t)
	ev := &interrupting{Evaluator: inner}
	ev.n.Store(2)
	store := journal.NewMemory()
	st := v1alpha1.WorkflowRunStatus{}
	for i, now := range []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)} {
		res := tickPost(t, run, st, ev, ops, store, now)
		st = res.Status
		ss := st.Steps[0]
		if i < 2 {
			if ss.Phase != v1alpha1.WorkflowStepPhaseRunning || ss.Reason != eval.ReasonInterrupted || ss.Retries != 0 || ss.Attempt != 1 {
				t.Fatalf("tick %d: step %s (%s) retries=%d attempt=%d: %s", i, ss.Phase, ss.Reason, ss.Retries, ss.Attempt, ss.Message)
			}
			if want := now.Add(time.Second); !res.WakeAt.Equal(want) || ss.NextAttemptTime == nil || !ss.NextAttemptTime.Time.Equal(want) {
				t.Fatalf("tick %d: wake at %s, next attempt %v; want %s", i, res.WakeAt, ss.NextAttemptTime, want)
			}
			continue
		}
		if ss.Phase != v1alpha1.WorkflowStepPhaseSucceeded || ss.Attempt != 1 {
			t.Fatalf("last tick: step %s (%s) attempt=%d: %s", ss.Phase, ss.Reason, ss.Attempt, ss.Message)
		}
	}
	if posts.Load() != 1 {
		t.Errorf("the POST went out %d times over three evaluations of one attempt, want 1", posts.Load())
	}
}

// flakyCondition fails the first n if evaluations as a pool does when its
// workers keep dying (eval.ErrInterrupted), then evaluates for real.
type flakyCondition struct {
	*eval.Evaluator
	n atomic.Int32
}

func (e *flakyCondition) Condition(expr string, scope map[string]any) (bool, error) {
	if e.n.Add(-1) >= 0 {
		return false, fmt.Errorf("if %q: %w: worker died", expr, eval.ErrInterrupted)
	}
	return e.Evaluator.Condition(expr, scope)
}

// An if the evaluator could not evaluate for its own reasons is decided
// again a moment later; the step neither fails nor is skipped meanwhile.
func TestInterruptedConditionIsDecidedLater(t *testing.T) {
	run := &v1alpha1.WorkflowRun{}
	run.Name, run.Namespace, run.UID = "int-if", "default", "uid"
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{
		Name: "post", Type: "post", If: `context.go == "yes"`}}}}
	run.Spec.Context = &runtime.RawExtension{Raw: []byte(`{"go":"yes"}`)}
	ops, posts := countPosts()
	inner := newScenarioEvaluator(t)
	ev := &flakyCondition{Evaluator: inner}
	ev.n.Store(1)
	store := journal.NewMemory()
	st := v1alpha1.WorkflowRunStatus{}
	for i, now := range []time.Time{t0, t0.Add(time.Second)} {
		res := tickPost(t, run, st, ev, ops, store, now)
		st = res.Status
		if i == 0 {
			if st.Finished || len(st.Steps) > 0 && st.Steps[0].Phase != v1alpha1.WorkflowStepPhasePending {
				t.Fatalf("after an interrupted if: run %s finished=%v steps %+v", st.Phase, st.Finished, st.Steps)
			}
			if want := now.Add(time.Second); !res.WakeAt.Equal(want) {
				t.Fatalf("after an interrupted if: wake at %s, want %s", res.WakeAt, want)
			}
			continue
		}
		if ss := st.Steps[0]; ss.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
			t.Fatalf("second tick: step %s (%s): %s", ss.Phase, ss.Reason, ss.Message)
		}
	}
	if posts.Load() != 1 {
		t.Errorf("POST sent %d times, want 1", posts.Load())
	}
}

// countPosts answers every op call as a 200 and counts the calls.
func countPosts() (op.Runner, *atomic.Int32) {
	posts := &atomic.Int32{}
	return op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
		posts.Add(1)
		return op.Result{Returns: map[string]any{"statusCode": 200, "body": "{}"}}, nil
	}), posts
}

// newScenarioEvaluator is an in-process evaluator over the scenarios' ops.
func newScenarioEvaluator(t *testing.T) *eval.Evaluator {
	t.Helper()
	ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// tickPost runs one tick of run, whose steps are of type "post" (one
// POST), from status st, with the journal in store.
func tickPost(t *testing.T, run *v1alpha1.WorkflowRun, st v1alpha1.WorkflowRunStatus, ev engine.Evaluator, ops op.Runner, store journal.Store, now time.Time) engine.Result {
	t.Helper()
	j, err := journal.Open(context.Background(), store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := run.DeepCopy()
	r.Status = st
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: r, Steps: r.Spec.WorkflowSpec.Steps, Evaluator: ev, Ops: ops, Journal: j,
		Definitions: engine.DefinitionMap{"post": {Name: "post", Template: "import \"vela/op\"\nreq: op.#HTTPPost & {url: \"http://x/y\"}\n"}},
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
