package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// A tick reports each step attempt that failed in it (Result.Failed), with
// the value its evaluation had, whether or not the run is annotated for
// debugging: an op error to be retried, #Fail, an unknown definition and a
// timeout; a run whose steps succeed reports none.
func TestTickReportsFailedAttempts(t *testing.T) {
	defs := engine.DefinitionMap{
		"ok":    {Name: "ok", Template: "square: 4\n"},
		"post":  {Name: "post", Template: "import \"vela/op\"\nreq: op.#HTTPPost & {url: \"http://x/boom\"}\n"},
		"fail":  {Name: "fail", Template: "import \"vela/op\"\nkept: \"yes\"\nno: op.#Fail & {message: \"no\"}\n"},
		"waits": {Name: "waits", Template: "import \"vela/op\"\nw: op.#ConditionalWait & {continue: false}\n"},
	}
	ev, _ := eval.New(eval.Options{Ops: scenarioCatalog()})
	ops := newStubOps()
	ops.setHTTP("/boom", 0, "", "connection refused")
	run := &v1alpha1.WorkflowRun{}
	run.Name, run.Namespace, run.UID = "f", "default", "uid"
	steps := func(names ...string) []v1alpha1.WorkflowStep {
		var out []v1alpha1.WorkflowStep
		for _, n := range names {
			s := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: n, Type: n}}
			if n == "waits" {
				s.Timeout = "1m"
			}
			out = append(out, s)
		}
		return out
	}
	tick := func(st v1alpha1.WorkflowRunStatus, at time.Time, names ...string) engine.Result {
		t.Helper()
		r := run.DeepCopy()
		r.Status = st
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: r, Steps: steps(names...), Mode: &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeDAG},
			Evaluator: ev, Ops: ops, Definitions: defs,
			Journal: journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{}),
			Now:     func() time.Time { return at },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	if res := tick(v1alpha1.WorkflowRunStatus{}, t0, "ok"); res.Status.Phase != v1alpha1.WorkflowRunSucceeded || res.Failed != nil {
		t.Errorf("a run that succeeds: %s, failed %+v", res.Status.Phase, res.Failed)
	}

	first := tick(v1alpha1.WorkflowRunStatus{}, t0, "ok", "post", "fail", "nodef", "waits")
	ids := map[string]string{}
	for _, s := range first.Status.Steps {
		ids[s.Name] = s.ID
	}
	want := []engine.FailedAttempt{
		{Step: "post", StepID: ids["post"], Definition: "post", Reason: engine.ReasonError, Retry: true,
			Value: map[string]any{"req": map[string]any{"url": "http://x/boom"}}},
		{Step: "fail", StepID: ids["fail"], Definition: "fail", Reason: eval.ReasonFail,
			Value: map[string]any{"kept": "yes", "no": map[string]any{"message": "no"}}},
		{Step: "nodef", StepID: ids["nodef"], Definition: "nodef", Reason: engine.ReasonDefinitionNotFound},
	}
	opts := cmp.Options{
		cmpopts.SortSlices(func(a, b engine.FailedAttempt) bool { return a.Step < b.Step }),
		cmpopts.IgnoreFields(engine.FailedAttempt{}, "Message", "StepID", "Value"),
	}
	if diff := cmp.Diff(want, first.Failed, opts); diff != "" {
		t.Errorf("failed attempts of the first tick (-want +got):\n%s", diff)
	}
	for _, w := range want {
		for _, f := range first.Failed {
			// Only the fields the test names, of the values.
			if f.Step == w.Step && !subset(w.Value, f.Value) {
				t.Errorf("%s: value %v, want %v in it", f.Step, f.Value, w.Value)
			}
		}
	}
	for _, f := range first.Failed {
		if f.Message == "" || f.StepID == "" {
			t.Errorf("%s: no message or id: %+v", f.Step, f)
		}
		if f.Step == "post" && f.StepID == ids["post"] {
			// The status holds the next attempt's id already.
			t.Errorf("post: reported under the id of its next attempt %s", f.StepID)
		}
	}

	later := tick(first.Status, t0.Add(2*time.Minute), "ok", "post", "fail", "nodef", "waits")
	var timedOut []engine.FailedAttempt
	for _, f := range later.Failed {
		if f.Step == "waits" {
			timedOut = append(timedOut, f)
		}
	}
	if len(timedOut) != 1 || timedOut[0].Reason != engine.ReasonTimeout || timedOut[0].Value != nil || timedOut[0].Retry {
		t.Errorf("timed out: %+v (all: %+v)", timedOut, later.Failed)
	}
}

// subset reports whether every field of want (maps, recursively) is in got
// with the same value; nil matches only nil.
func subset(want, got any) bool {
	w, ok := want.(map[string]any)
	if !ok {
		return cmp.Equal(want, got)
	}
	g, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range w {
		if !subset(v, g[k]) {
			return false
		}
	}
	return true
}
