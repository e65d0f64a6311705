package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// suspendAction changes a run (a tick, an operation, a tool's write) and
// names what it did.
type suspendAction struct {
	name string
	do   func(t *testing.T, r *suspendRig) error
}

// suspendWant is the run after an action: status.suspend, suspendState,
// the phase, and the SREWorks state pkg/app reads from them.
type suspendWant struct {
	suspend  bool
	state    string
	phase    v1alpha1.WorkflowRunPhase
	instance string
}

type suspendRig struct {
	run   *v1alpha1.WorkflowRun
	g     *graph.Graph
	ev    *eval.Evaluator
	ops   *stubOps
	store *journal.Memory
}

func (r *suspendRig) tick(t *testing.T) {
	t.Helper()
	j, err := journal.Open(context.Background(), r.store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Tick(context.Background(), engine.Input{
		Run: r.run, Steps: r.run.Spec.WorkflowSpec.Steps, Evaluator: r.ev, Ops: r.ops, Journal: j,
		Definitions: engine.DefinitionMap{
			"gate": {Name: "gate", Template: "import \"vela/op\"\nwait: op.#Suspend & {message: \"approve?\"}\n"},
			"post": {Name: "post", Template: "import \"vela/op\"\nreq: op.#HTTPPost & {url: \"http://x/post\"}\n"},
		},
		Now: func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.run.Status = res.Status
}

var (
	tickRun   = suspendAction{"tick", func(t *testing.T, r *suspendRig) error { r.tick(t); return nil }}
	resumeRun = suspendAction{"resume the run", func(_ *testing.T, r *suspendRig) error { return engine.Resume(&r.run.Status, "") }}
	// suspendRun is the CLI's and the REST API's suspend of the run.
	suspendRun = suspendAction{"suspend the run", func(_ *testing.T, r *suspendRig) error { return engine.Suspend(&r.run.Status, "") }}
	// toolSets is a tool writing status.suspend alone, as KubeVela's
	// vela CLI suspends and resumes a run.
	toolSets = func(v bool) suspendAction {
		return suspendAction{fmt.Sprintf("a tool sets status.suspend=%v", v), func(_ *testing.T, r *suspendRig) error { r.run.Status.Suspend = v; return nil }}
	}
	resumeStep = func(step string) suspendAction {
		return suspendAction{"resume step " + step, func(_ *testing.T, r *suspendRig) error {
			return engine.ResumeStep(&r.run.Status, r.g, step, "")
		}}
	}
	suspendStep = func(step string) suspendAction {
		return suspendAction{"suspend step " + step, func(_ *testing.T, r *suspendRig) error {
			return engine.SuspendStep(&r.run.Status, r.g, step, "")
		}}
	}
	terminateRun = suspendAction{"terminate the run", func(_ *testing.T, r *suspendRig) error {
		return engine.Terminate(&r.run.Status, "", t0)
	}}
)

// TestStatusSuspend: status.suspend is true while the run is suspended,
// by a step or from outside, as KubeVela's is, and false once resumed;
// suspendState says which, so that a resume of the step that held the run
// does not resume a run suspended from outside, and a status.suspend set
// by a tool (or stored by an earlier version) counts as from outside.
func TestStatusSuspend(t *testing.T) {
	var (
		byStep      = suspendWant{true, engine.SuspendStateSteps, v1alpha1.WorkflowRunSuspending, app.InstanceSuspend}
		fromOutside = suspendWant{true, engine.SuspendStateOperator, v1alpha1.WorkflowRunSuspending, app.InstanceSuspend}
		// resumed: the run was suspending, nothing holds it any more; the
		// next tick makes it executing.
		resumed   = suspendWant{false, "", v1alpha1.WorkflowRunSuspending, app.InstanceRunning}
		succeeded = suspendWant{false, "", v1alpha1.WorkflowRunSucceeded, app.InstanceSuccess}
	)
	type step struct {
		act  suspendAction
		want suspendWant
	}
	for _, tc := range []struct {
		name  string
		steps []string // step types, named after them
		from  func(st *v1alpha1.WorkflowRunStatus)
		seq   []step
	}{
		{name: "a step suspends, the run is resumed", steps: []string{"post", "gate"}, seq: []step{
			{tickRun, byStep},
			{tickRun, byStep},
			{resumeRun, resumed},
			{tickRun, succeeded},
		}},
		{name: "a step suspends, that step is resumed", steps: []string{"post", "gate"}, seq: []step{
			{tickRun, byStep},
			{resumeStep("gate"), resumed},
			{tickRun, succeeded},
		}},
		{name: "suspended from outside before it started", steps: []string{"post", "gate"}, seq: []step{
			{suspendRun, suspendWant{true, engine.SuspendStateOperator, "", app.InstancePending}},
			{tickRun, fromOutside},
			{resumeRun, resumed},
			{tickRun, byStep},
		}},
		{name: "suspended from outside while a step holds it", steps: []string{"gate", "post"}, seq: []step{
			{tickRun, byStep},
			{suspendRun, fromOutside},
			// The step is resumed, the run stays suspended from outside.
			{resumeStep("gate"), fromOutside},
			{tickRun, fromOutside},
			{resumeRun, resumed},
			{tickRun, succeeded},
		}},
		{name: "a tool sets status.suspend", steps: []string{"post", "gate"}, seq: []step{
			{toolSets(true), suspendWant{true, "", "", app.InstancePending}},
			{tickRun, fromOutside},
			// suspendState is the engine's: the next tick clears it.
			{toolSets(false), suspendWant{false, engine.SuspendStateOperator, v1alpha1.WorkflowRunSuspending, app.InstanceRunning}},
			{tickRun, byStep},
			// A tool's resume of a run a step holds: the step still holds it.
			{toolSets(false), suspendWant{false, engine.SuspendStateSteps, v1alpha1.WorkflowRunSuspending, app.InstanceSuspend}},
			{tickRun, byStep},
		}},
		{name: "a status stored before suspendState, suspended from outside while a step held it", steps: []string{"gate", "post"},
			from: func(st *v1alpha1.WorkflowRunStatus) {
				st.Suspend = true
				st.Steps = []v1alpha1.WorkflowStepStatus{{StepStatus: v1alpha1.StepStatus{
					Name: "gate", Type: "gate", Phase: v1alpha1.WorkflowStepPhaseSuspending, Reason: engine.ReasonSuspend, Attempt: 1, ID: "gate-0123456789", SuspendedBy: "wait"}}}
			}, seq: []step{
				{tickRun, fromOutside},
				{resumeRun, resumed},
				{tickRun, succeeded},
			}},
		{name: "a step held before it started", steps: []string{"post", "gate"}, seq: []step{
			{suspendStep("gate"), suspendWant{true, engine.SuspendStateSteps, "", app.InstancePending}},
			{tickRun, byStep},
			{resumeRun, resumed},
			{tickRun, byStep}, // gate now runs, and suspends itself
			{resumeStep("gate"), resumed},
			{tickRun, succeeded},
		}},
		{name: "terminated while a step holds it", steps: []string{"gate", "post"}, seq: []step{
			{tickRun, byStep},
			{terminateRun, suspendWant{false, "", v1alpha1.WorkflowRunTerminated, app.InstanceTerminated}},
			{tickRun, suspendWant{false, "", v1alpha1.WorkflowRunTerminated, app.InstanceTerminated}},
		}},
		{name: "nothing suspends", steps: []string{"post", "post"}, seq: []step{
			{tickRun, succeeded},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := eval.New(eval.Options{Ops: scenarioCatalog()})
			if err != nil {
				t.Fatal(err)
			}
			run := &v1alpha1.WorkflowRun{}
			run.Name, run.Namespace, run.UID = "susp", "default", "uid"
			run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{}
			for i, typ := range tc.steps {
				run.Spec.WorkflowSpec.Steps = append(run.Spec.WorkflowSpec.Steps, v1alpha1.WorkflowStep{
					WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: typ, Type: typ}})
				if i > 0 && typ == tc.steps[i-1] {
					run.Spec.WorkflowSpec.Steps[i].Name = fmt.Sprintf("%s-%d", typ, i)
				}
			}
			if tc.from != nil {
				tc.from(&run.Status)
			}
			g, err := graph.Build(run.Spec.WorkflowSpec.Steps, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := &suspendRig{run: run, g: g, ev: ev, ops: newStubOps(), store: journal.NewMemory()}
			for i, s := range tc.seq {
				if err := s.act.do(t, r); err != nil {
					t.Fatalf("%d %s: %v", i, s.act.name, err)
				}
				st := r.run.Status
				got := suspendWant{st.Suspend, st.SuspendState, st.Phase, app.InstanceState(r.run)}
				if got != s.want {
					t.Errorf("after %d %s: suspend=%v suspendState=%q phase=%q instance=%s; want suspend=%v suspendState=%q phase=%q instance=%s",
						i, s.act.name, got.suspend, got.state, got.phase, got.instance, s.want.suspend, s.want.state, s.want.phase, s.want.instance)
				}
			}
		})
	}
}
