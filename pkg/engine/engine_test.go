package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

type debugSink map[string]any

func (d debugSink) StepValue(step, id string, v any) { d[step+"@"+id] = v }

func TestDebugKeepsEvaluatedValue(t *testing.T) {
	for _, annotated := range []bool{true, false} {
		run := &v1alpha1.WorkflowRun{}
		run.Name, run.Namespace, run.UID = "dbg", "default", "uid"
		if annotated {
			run.Annotations = map[string]string{engine.DebugAnnotation: "true"}
		}
		run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{
			Name: "compute", Type: "compute", Properties: &runtime.RawExtension{Raw: []byte(`{"n": 2}`)},
		}}}}
		ev, _ := eval.New(eval.Options{Ops: scenarioCatalog()})
		sink := debugSink{}
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: run, Steps: run.Spec.WorkflowSpec.Steps, Evaluator: ev, Ops: newStubOps(),
			Definitions: engine.DefinitionMap{"compute": {Name: "compute", Template: "parameter: n: int\nsquare: parameter.n * parameter.n\n"}},
			Journal:     journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{}),
			Debug:       sink, Now: func() time.Time { return t0 },
		})
		if err != nil || res.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("%v %s %s", err, res.Status.Phase, res.Status.Message)
		}
		if !annotated {
			if len(sink) != 0 {
				t.Errorf("values kept without the annotation: %v", sink)
			}
			continue
		}
		id := res.Status.Steps[0].ID
		v, ok := sink["compute@"+id].(map[string]any)
		if !ok || v["square"] != int64(4) {
			t.Errorf("debug value = %#v", sink)
		}
	}
}

// A journal entry over the bound fails the step with a clear message
// instead of reaching the API server's object size limit.
func TestJournalBoundFailsStep(t *testing.T) {
	run := &v1alpha1.WorkflowRun{}
	run.Name, run.Namespace, run.UID = "big", "default", "uid"
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "post", Type: "post"}}}}
	big := strings.Repeat("x", 70<<10)
	ops := op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
		return op.Result{Returns: map[string]any{"statusCode": 200, "body": big}}, nil
	})
	ev, _ := eval.New(eval.Options{Ops: scenarioCatalog()})
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: run, Steps: run.Spec.WorkflowSpec.Steps, Evaluator: ev, Ops: ops,
		Definitions: engine.DefinitionMap{"post": {Name: "post", Template: "import \"vela/op\"\nreq: op.#HTTPPost & {url: \"http://x/y\"}\n"}},
		Journal:     journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{}),
		Now:         func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	ss := res.Status.Steps[0]
	if ss.Phase != v1alpha1.WorkflowStepPhaseFailed || !strings.Contains(ss.Message, "bound") {
		t.Fatalf("step %s (%s): %s", ss.Phase, ss.Reason, ss.Message)
	}
}

// A crash after a #Suspend fired but before the status saying so was
// written must not count as a resume: the step suspends again.
func TestSuspendSurvivesLostStatusWrite(t *testing.T) {
	run := &v1alpha1.WorkflowRun{}
	run.Name, run.Namespace, run.UID = "crash", "default", "uid"
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "gate", Type: "gate"}}}}
	ev, _ := eval.New(eval.Options{Ops: scenarioCatalog()})
	store := journal.NewMemory()
	tick := func(st v1alpha1.WorkflowRunStatus) v1alpha1.WorkflowRunStatus {
		j, err := journal.Open(context.Background(), store, journal.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		r := run.DeepCopy()
		r.Status = st
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: r, Steps: r.Spec.WorkflowSpec.Steps, Evaluator: ev, Ops: newStubOps(), Journal: j,
			Definitions: engine.DefinitionMap{"gate": {Name: "gate", Template: "import \"vela/op\"\nask: op.#HTTPPost & {url: \"http://x/ask\"}\nwait: op.#Suspend & {message: \"approve?\"}\n"}},
			Now:         func() time.Time { return t0 },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	first := tick(v1alpha1.WorkflowRunStatus{})
	if first.Steps[0].Phase != v1alpha1.WorkflowStepPhaseSuspending || first.Steps[0].SuspendedBy != "wait" {
		t.Fatalf("first tick: %+v", first.Steps[0])
	}
	// The status write of the first tick is lost: tick again from nothing.
	again := tick(v1alpha1.WorkflowRunStatus{})
	if again.Steps[0].Phase != v1alpha1.WorkflowStepPhaseSuspending {
		t.Fatalf("after a lost status write the step is %s: the suspend was taken as resumed", again.Steps[0].Phase)
	}
	// A real resume goes through.
	if err := engine.Resume(&again, ""); err != nil {
		t.Fatal(err)
	}
	if done := tick(again); done.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("after resume: %s %+v", done.Phase, done.Steps[0])
	}
}
