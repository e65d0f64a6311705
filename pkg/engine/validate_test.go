package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// postDef posts to parameter.url; its parameter has a closed struct and
// an enum, and exports the URL it posted to.
const postDef = `
import "vela/op"

post: op.#HTTPPost & {
	url: parameter.url
	request: body: parameter.level
}
parameter: {
	url:   string
	level: *"info" | "warn"
	retry: close({times: *1 | int})
}
`

// The properties of every step are checked against their definitions at
// the run's first tick: a run with bad properties in two steps fails at
// once, naming both problems, before any step has had an effect; a
// property an input fills later is no problem.
func TestPropertiesAreCheckedBeforeAnyStep(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	reg := op.NewRegistry().Add(builtin.New(), httpop.New(httpop.Options{}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	defs := engine.DefinitionMap{"post": {Name: "post", Template: postDef}}
	step := func(name, props string, inputs ...v1alpha1.InputItem) v1alpha1.WorkflowStep {
		s := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: name, Type: "post", Inputs: inputs,
			Properties: &runtime.RawExtension{Raw: []byte(strings.ReplaceAll(props, "URL", srv.URL))}}}
		s.Outputs = v1alpha1.StepOutputs{{Name: name + "-url", ValueFrom: "parameter.url"}}
		return s
	}
	group := func(name string, subs ...v1alpha1.WorkflowStep) v1alpha1.WorkflowStep {
		g := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: name, Type: "step-group"}}
		for _, s := range subs {
			g.SubSteps = append(g.SubSteps, s.WorkflowStepBase)
		}
		return g
	}
	cases := []struct {
		name  string
		steps []v1alpha1.WorkflowStep
		// want are the problems the run's message lists; none: it succeeds.
		want     []string
		wantHits int32
	}{{
		name: "two bad steps",
		steps: []v1alpha1.WorkflowStep{
			step("first", `{"url": "URL", "level": "debug"}`),
			step("second", `{"url": 8080, "retry": {"times": 2, "limit": 3}}`),
		},
		want: []string{
			`step "first" (definition "post"): properties.level: got "debug", want *"info" | "warn"`,
			`step "second" (definition "post"): properties.retry.limit: field not allowed`,
			`step "second" (definition "post"): properties.url: got 8080, want string`,
		},
	}, {
		name: "a required field missing in a sub-step",
		steps: []v1alpha1.WorkflowStep{
			step("first", `{"url": "URL"}`),
			group("group", step("inner", `{"level": "warn"}`)),
		},
		want: []string{`step "inner" (definition "post"): properties.url: required field missing: want string`},
	}, {
		name: "a field filled by an input later",
		steps: []v1alpha1.WorkflowStep{
			step("first", `{"url": "URL"}`),
			step("second", `{}`, v1alpha1.InputItem{From: "first-url", ParameterKey: "url"}),
		},
		wantHits: 2,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "props", Namespace: "ns", UID: "uid-props"}}
			run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: tc.steps}
			j, err := journal.Open(context.Background(), journal.NewMemory(), journal.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := engine.Tick(context.Background(), engine.Input{
				Run: run, Steps: tc.steps, Definitions: defs, Evaluator: ev,
				Ops: op.Direct, Journal: j, Now: func() time.Time { return t0 },
			})
			if err != nil {
				t.Fatal(err)
			}
			st := res.Status
			if got := hits.Load(); got != tc.wantHits {
				t.Errorf("%d requests went out, want %d", got, tc.wantHits)
			}
			if len(tc.want) == 0 {
				if st.Phase != v1alpha1.WorkflowRunSucceeded {
					t.Fatalf("run %s: %s", st.Phase, st.Message)
				}
				return
			}
			if st.Phase != v1alpha1.WorkflowRunFailed || !st.Finished {
				t.Fatalf("run %s (finished %v), want failed at its first tick: %s", st.Phase, st.Finished, st.Message)
			}
			if len(st.Steps) != 0 {
				t.Errorf("steps began: %+v", st.Steps)
			}
			for _, w := range tc.want {
				if !strings.Contains(st.Message, w) {
					t.Errorf("message %q does not say %q", st.Message, w)
				}
			}
			if n := strings.Count(st.Message, "step \""); n != len(tc.want) {
				t.Errorf("message lists %d problems, want %d: %s", n, len(tc.want), st.Message)
			}
		})
	}
}

// flakyValidator reports the first n checks of properties interrupted, as
// a pool does when its workers keep dying, then checks for real.
type flakyValidator struct {
	*eval.Evaluator
	n atomic.Int32
}

func (e *flakyValidator) ValidateParameters(checks []eval.ParameterCheck) error {
	if e.n.Add(-1) >= 0 {
		return fmt.Errorf("checking the steps' properties: %w: worker died", eval.ErrInterrupted)
	}
	return e.Evaluator.ValidateParameters(checks)
}

// A check the evaluator could not finish for its own reasons neither
// fails the run nor lets a step begin unchecked: the tick starts nothing
// and asks to be woken shortly, and the next tick checks again.
func TestInterruptedPropertiesCheckIsDoneAgain(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	reg := op.NewRegistry().Add(builtin.New(), httpop.New(httpop.Options{}))
	inner, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	ev := &flakyValidator{Evaluator: inner}
	ev.n.Store(1)
	defs := engine.DefinitionMap{"post": {Name: "post", Template: postDef}}
	steps := []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "p", Type: "post",
		Properties: &runtime.RawExtension{Raw: []byte(fmt.Sprintf(`{"url": %q}`, srv.URL))}}}}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "flaky", Namespace: "ns", UID: "uid-flaky"}}
	run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: steps}
	tick := func() engine.Result {
		t.Helper()
		j, err := journal.Open(context.Background(), journal.NewMemory(), journal.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := engine.Tick(context.Background(), engine.Input{Run: run, Steps: steps, Definitions: defs, Evaluator: ev,
			Ops: op.Direct, Journal: j, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := tick()
	if res.Status.Finished || len(res.Status.Steps) != 0 || hits.Load() != 0 {
		t.Fatalf("after an interrupted check: finished %v, steps %+v, %d requests", res.Status.Finished, res.Status.Steps, hits.Load())
	}
	if !res.WakeAt.Equal(t0.Add(time.Second)) {
		t.Errorf("wake at %s, want a second after the tick", res.WakeAt)
	}
	run.Status = res.Status
	if res = tick(); res.Status.Phase != v1alpha1.WorkflowRunSucceeded || hits.Load() != 1 {
		t.Fatalf("the next tick: run %s (%s), %d requests", res.Status.Phase, res.Status.Message, hits.Load())
	}
}
