package engine_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
)

// Runs sharing a limiter, ticked as the controller ticks them: each at its
// WakeAt, with the clock at that time. The transcript has a line per tick:
// when, which run, its steps (pending ones with their reason), the ops
// made, and the WakeAt.
func TestRateLimitedStarts(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	defs := engine.DefinitionMap{
		"post":    {Name: "post", Template: "import \"vela/op\"\nparameter: path: string\nreq: op.#HTTPPost & {url: \"http://x/\" + parameter.path}\n"},
		"compute": {Name: "compute", Template: "parameter: {}\nout: 1\n"},
	}
	step := func(name, typ string) v1alpha1.WorkflowStep {
		s := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: name, Type: typ}}
		if typ == "post" {
			s.Properties = &runtime.RawExtension{Raw: []byte(fmt.Sprintf(`{"path": %q}`, name))}
		}
		return s
	}
	dag := &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeDAG}
	type runSpec struct {
		name  string
		mode  *v1alpha1.WorkflowExecuteMode
		steps []v1alpha1.WorkflowStep
	}
	oneLimit := map[string]ratelimit.Limit{"post": {QPS: 1, Burst: 1}}
	for _, tc := range []struct {
		name   string
		limits map[string]ratelimit.Limit // nil: no limiter
		runs   []runSpec
		want   []string
	}{{
		name:   "two runs share the limit of their type; another type is not held",
		limits: oneLimit,
		runs: []runSpec{
			{"a", dag, []v1alpha1.WorkflowStep{step("a1", "post"), step("a2", "post"), step("fast", "compute")}},
			{"b", dag, []v1alpha1.WorkflowStep{step("b1", "post")}},
		},
		want: []string{
			"0s a: a1=pending(RateLimited) a2=pending(RateLimited) fast=succeeded; ops []; wake 1s",
			"0s b: b1=pending(RateLimited); ops []; wake 3s",
			"1s a: a1=succeeded a2=pending(RateLimited) fast=succeeded; ops [a1/req]; wake 2s",
			"2s a: a1=succeeded a2=succeeded fast=succeeded; ops [a2/req]; done",
			"3s b: b1=succeeded; ops [b1/req]; done",
		},
	}, {
		name: "no limiter: nothing waits",
		runs: []runSpec{
			{"a", dag, []v1alpha1.WorkflowStep{step("a1", "post"), step("a2", "post"), step("fast", "compute")}},
			{"b", dag, []v1alpha1.WorkflowStep{step("b1", "post")}},
		},
		want: []string{
			"0s a: a1=succeeded a2=succeeded fast=succeeded; ops [a1/req a2/req]; done",
			"0s b: b1=succeeded; ops [b1/req]; done",
		},
	}, {
		name:   "step by step: the next step asks once the one before is done",
		limits: map[string]ratelimit.Limit{"post": {QPS: 2, Burst: 1}},
		runs: []runSpec{
			{"s", nil, []v1alpha1.WorkflowStep{step("p1", "post"), step("c", "compute"), step("p2", "post")}},
		},
		want: []string{
			"0s s: p1=pending(RateLimited); ops []; wake 500ms",
			"500ms s: p1=succeeded c=succeeded p2=pending(RateLimited); ops [p1/req]; wake 1s",
			"1s s: p1=succeeded c=succeeded p2=succeeded; ops [p2/req]; done",
		},
	}, {
		name:   "burst: the first starts wait one interval, then a burst goes at once",
		limits: map[string]ratelimit.Limit{"post": {QPS: 1, Burst: 2}},
		runs: []runSpec{
			{"a", dag, []v1alpha1.WorkflowStep{step("a1", "post"), step("a2", "post"), step("a3", "post")}},
		},
		want: []string{
			"0s a: a1=pending(RateLimited) a2=pending(RateLimited) a3=pending(RateLimited); ops []; wake 1s",
			"1s a: a1=succeeded a2=pending(RateLimited) a3=pending(RateLimited); ops [a1/req]; wake 2s",
			"2s a: a1=succeeded a2=succeeded a3=pending(RateLimited); ops [a2/req]; wake 3s",
			"3s a: a1=succeeded a2=succeeded a3=succeeded; ops [a3/req]; done",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var lim engine.Limiter
			if tc.limits != nil {
				s, err := ratelimit.NewStarts(tc.limits, t0)
				if err != nil {
					t.Fatal(err)
				}
				lim = s
			}
			type live struct {
				run  *v1alpha1.WorkflowRun
				j    *journal.Journal
				wake time.Time
			}
			var runs []*live
			for _, r := range tc.runs {
				run := &v1alpha1.WorkflowRun{
					ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: "default", UID: k8stypes.UID("uid-" + r.name)},
					Spec:       v1alpha1.WorkflowRunSpec{Mode: r.mode, WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: r.steps}},
				}
				runs = append(runs, &live{run: run, j: journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{}), wake: t0})
			}
			ops := newStubOps()
			var got []string
			for i := 0; i < 20; i++ {
				var now time.Time
				for _, r := range runs {
					if !r.run.Status.Finished && (now.IsZero() || r.wake.Before(now)) {
						now = r.wake
					}
				}
				if now.IsZero() {
					break
				}
				for _, r := range runs {
					if r.run.Status.Finished || r.wake.After(now) {
						continue
					}
					ops.resetCalls()
					res, err := engine.Tick(context.Background(), engine.Input{
						Run: r.run, Steps: r.run.Spec.WorkflowSpec.Steps, Mode: r.run.Spec.Mode,
						Definitions: defs, Evaluator: ev, Ops: ops, Journal: r.j, Limiter: lim,
						Now: func() time.Time { return now },
					})
					if err != nil {
						t.Fatal(err)
					}
					r.run.Status, r.wake = res.Status, res.WakeAt
					got = append(got, transcriptLine(now.Sub(t0), r.run, ops.calls(), res.WakeAt))
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("transcript (-want +got):\n%s", d)
			}
		})
	}
}

func transcriptLine(at time.Duration, run *v1alpha1.WorkflowRun, calls []string, wake time.Time) string {
	var steps []string
	for _, s := range run.Status.Steps {
		x := s.Name + "=" + string(s.Phase)
		if s.Phase == v1alpha1.WorkflowStepPhasePending {
			x += "(" + s.Reason + ")"
		}
		steps = append(steps, x)
	}
	sort.Strings(calls)
	end := "done"
	if !run.Status.Finished {
		end = "wake " + wake.Sub(t0).String()
	}
	return fmt.Sprintf("%s %s: %s; ops %v; %s", at, run.Name, strings.Join(steps, " "), calls, end)
}

// A rate-limited step says why it waits and for what; asking again in the
// same tick or a repeated tick neither changes that nor takes its turn.
func TestRateLimitedMessage(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.NewStarts(map[string]ratelimit.Limit{"compute": {QPS: 0.5, Burst: 1}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "default", UID: "uid-m"}}
	steps := []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "c", Type: "compute"}}}
	tick := func(now time.Time) engine.Result {
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: run, Steps: steps, Evaluator: ev, Ops: newStubOps(), Limiter: lim,
			Definitions: engine.DefinitionMap{"compute": {Name: "compute", Template: "parameter: {}\nout: 1\n"}},
			Journal:     journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{}),
			Now:         func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := tick(t0)
	ss := first.Status.Steps[0]
	wantMsg := `waiting for its turn to start: steps of type "compute" are rate-limited to 0.5 per second, burst 1`
	if ss.Phase != v1alpha1.WorkflowStepPhasePending || ss.Reason != engine.ReasonRateLimited || ss.Message != wantMsg {
		t.Fatalf("step is %s (%s) %q, want pending (%s) %q", ss.Phase, ss.Reason, ss.Message, engine.ReasonRateLimited, wantMsg)
	}
	if want := t0.Add(2 * time.Second); !first.WakeAt.Equal(want) {
		t.Errorf("WakeAt %v, want %v (its turn, exactly)", first.WakeAt, want)
	}
	// The same tick again (its status write lost): same status, same turn.
	again := tick(t0.Add(time.Second))
	if d := cmp.Diff(first.Status.Steps, again.Status.Steps); d != "" {
		t.Errorf("a repeated tick changed the steps:\n%s", d)
	}
	if !again.WakeAt.Equal(first.WakeAt) {
		t.Errorf("repeated tick wakes at %v, want %v", again.WakeAt, first.WakeAt)
	}
	run.Status = first.Status
	if done := tick(first.WakeAt); done.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Errorf("at its turn the run is %s: %+v", done.Status.Phase, done.Status.Steps)
	}
}

// A compensation starts as a step of its type does: over its type's limit
// it stays pending with reason RateLimited until its turn, and the run
// stays rollingBack meanwhile.
func TestRateLimitedCompensation(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	defs := engine.DefinitionMap{
		"post":   {Name: "post", Template: "import \"vela/op\"\nparameter: path: string\nreq: op.#HTTPPost & {url: \"http://x/\" + parameter.path}\n"},
		"undo":   {Name: "undo", Template: "import \"vela/op\"\nparameter: path: string\nreq: op.#HTTPPost & {url: \"http://x/undo/\" + parameter.path}\n"},
		"broken": {Name: "broken", Template: "import \"vela/op\"\nfail: op.#Fail & {message: \"broken on purpose\"}\n"},
	}
	lim, err := ratelimit.NewStarts(map[string]ratelimit.Limit{"undo": {QPS: 1, Burst: 1}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	steps := []v1alpha1.WorkflowStep{
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "a", Type: "post", Properties: &runtime.RawExtension{Raw: []byte(`{"path": "a"}`)},
			Compensate: &v1alpha1.Compensation{Type: "undo"}}},
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "b", Type: "broken"}},
	}
	run := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default", UID: "uid-c"},
		Spec: v1alpha1.WorkflowRunSpec{Orchestration: v1alpha1.Orchestration{OnFailure: v1alpha1.FailurePolicyCompensate},
			WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps}},
	}
	j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
	ops := newStubOps()
	var got []string
	now := t0
	for i := 0; i < 5 && !run.Status.Finished; i++ {
		ops.resetCalls()
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: run, Steps: steps, Definitions: defs, Evaluator: ev, Ops: ops, Journal: j, Limiter: lim,
			Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		run.Status = res.Status
		line := fmt.Sprintf("%s %s", now.Sub(t0), run.Status.Phase)
		if c := run.Status.Steps[0].Compensation; c != nil {
			line += fmt.Sprintf(" a's compensation %s (%s)", c.Phase, c.Reason)
		}
		line += fmt.Sprintf("; ops %v", ops.calls())
		if !run.Status.Finished {
			line += "; wake " + res.WakeAt.Sub(t0).String()
			now = res.WakeAt
		}
		got = append(got, line)
	}
	want := []string{
		"0s rollingBack a's compensation pending (RateLimited); ops [a/req]; wake 1s",
		"1s rolledBack a's compensation succeeded (); ops [a/req]",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("transcript (-want +got):\n%s", d)
	}
}
