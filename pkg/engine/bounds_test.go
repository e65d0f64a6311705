package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// boundsDefinitions make big values: "big" outputs a string of n bytes,
// "loud" fails and "slow" waits with a message of n bytes, "use" takes an
// input.
var boundsDefinitions = engine.DefinitionMap{
	"big":  {Name: "big", Template: "import \"strings\"\nparameter: n: int\nvalue: strings.Repeat(\"x\", parameter.n)\ndo: {#provider: \"fz\", #do: \"ok\"}"},
	"loud": {Name: "loud", Template: "import \"strings\"\nparameter: n: int\nf: {#provider: \"fz\", #do: \"fail\", msg: strings.Repeat(\"x\", parameter.n)}"},
	"slow": {Name: "slow", Template: "import \"strings\"\nparameter: n: int\nw: {#provider: \"fz\", #do: \"wait\", msg: strings.Repeat(\"x\", parameter.n)}"},
	"use":  {Name: "use", Template: `do: {#provider: "fz", #do: "ok"}`},
}

// boundsOps runs the fz ops of boundsDefinitions.
func boundsOps(ctx context.Context, call *op.Call) (op.Result, error) {
	p := call.Params.(*fuzzParams)
	switch call.Name.Do {
	case "fail":
		return op.Result{Stop: &op.Stop{Kind: op.Fail, Message: p.Msg}}, nil
	case "wait":
		return op.Result{Stop: &op.Stop{Kind: op.Wait, Message: p.Msg}}, nil
	}
	return op.Result{Returns: map[string]any{"ok": true}}, nil
}

func sized(name, typ string, n int) v1alpha1.WorkflowStep {
	s := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{
		Name: name, Type: typ, Properties: &runtime.RawExtension{Raw: []byte(fmt.Sprintf(`{"n": %d}`, n))},
	}}
	if typ == "big" {
		s.Outputs = v1alpha1.StepOutputs{{Name: "o-" + name, ValueFrom: "value"}}
	}
	return s
}

// statusLimit is the status size the bounds must keep a run under: the API
// server and etcd take at most 1.5 MiB for the whole object, spec included.
const statusLimit = 1 << 20

// Outputs and messages too large for the status fail their step visibly or
// are truncated; the status stays under statusLimit however much the
// templates produce.
func TestStatusBounds(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: fuzzCatalog(), EvalTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var fifty = func(typ string, n int) []v1alpha1.WorkflowStep {
		var out []v1alpha1.WorkflowStep
		for i := 0; i < 50; i++ {
			out = append(out, sized(fmt.Sprintf("s%02d", i), typ, n))
		}
		return out
	}
	consumers := []v1alpha1.WorkflowStep{sized("src", "big", 100<<10)}
	for i := 0; i < 10; i++ {
		consumers = append(consumers, v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{
			Name: fmt.Sprintf("use%d", i), Type: "use", DependsOn: []string{"src"},
			Inputs: v1alpha1.StepInputs{{From: "o-src"}},
		}})
	}
	for _, tc := range []struct {
		name  string
		mode  v1alpha1.WorkflowMode
		steps []v1alpha1.WorkflowStep
		// want is the phase of the run, failed the step that fails, reason
		// its reason and message what its message says.
		want    v1alpha1.WorkflowRunPhase
		failed  string
		reason  string
		message string
	}{{
		name: "one output over the bound", steps: []v1alpha1.WorkflowStep{sized("s", "big", 200<<10)},
		want: v1alpha1.WorkflowRunFailed, failed: "s", reason: engine.ReasonOutput,
		message: `output "o-s" is 200.0 KiB (204802 bytes), over the bound of 128.0 KiB (131072 bytes) for one output`,
	}, {
		name: "50 steps x 100 KiB of outputs", steps: fifty("big", 100<<10), mode: v1alpha1.WorkflowModeStep,
		want: v1alpha1.WorkflowRunFailed, failed: "s05", reason: engine.ReasonOutput,
		message: `outputs "o-s05" are 100.0 KiB (102402 bytes); with them the run's outputs and inputs would come to 600.0 KiB (614412 bytes), over its budget of 512.0 KiB (524288 bytes)`,
	}, {
		name: "50 steps x 100 KiB of outputs, DAG", steps: fifty("big", 100<<10), mode: v1alpha1.WorkflowModeDAG,
		want: v1alpha1.WorkflowRunFailed, reason: engine.ReasonOutput, message: "over its budget of 512.0 KiB",
	}, {
		name: "one output read by 10 steps", steps: consumers, mode: v1alpha1.WorkflowModeDAG,
		want: v1alpha1.WorkflowRunFailed, reason: engine.ReasonInput, message: `inputs "o-src" are 100.0 KiB (102402 bytes); recorded, the run's outputs and inputs would come to`,
	}, {
		name: "50 steps x 100 KiB failure messages", steps: fifty("loud", 100<<10), mode: v1alpha1.WorkflowModeDAG,
		want: v1alpha1.WorkflowRunFailed, failed: "s00", reason: eval.ReasonFail, message: "… (truncated, 102400 bytes)",
	}, {
		name: "50 steps x 100 KiB wait messages", steps: fifty("slow", 100<<10), mode: v1alpha1.WorkflowModeDAG,
		want: v1alpha1.WorkflowRunExecuting,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			run := &v1alpha1.WorkflowRun{
				ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "default", UID: "uid-big"},
				Spec:       v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: tc.steps}},
			}
			if tc.mode != "" {
				run.Spec.Mode = &v1alpha1.WorkflowExecuteMode{Steps: tc.mode}
			}
			j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
			now := fuzzT0
			for i := 0; i < 10 && !run.Status.Finished; i++ {
				res, err := engine.Tick(context.Background(), engine.Input{
					Run: run, Steps: tc.steps, Mode: run.Spec.Mode, Definitions: boundsDefinitions,
					Evaluator: ev, Ops: op.RunnerFunc(boundsOps), Journal: j, Now: func() time.Time { return now },
				})
				if err != nil {
					t.Fatal(err)
				}
				run.Status = res.Status
				now = now.Add(time.Second)
			}
			st := run.Status
			data, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("status: %s, %d bytes", st.Phase, len(data))
			if len(data) > statusLimit {
				t.Errorf("the status is %d bytes, over %d", len(data), statusLimit)
			}
			if st.Phase != tc.want {
				t.Fatalf("run is %s (%q), want %s", st.Phase, st.Message, tc.want)
			}
			found := tc.reason == ""
			for _, s := range st.Steps {
				if len(s.Message) > engine.MaxMessageBytes {
					t.Errorf("step %s has a message of %d bytes, over %d", s.Name, len(s.Message), engine.MaxMessageBytes)
				}
				if s.Phase != v1alpha1.WorkflowStepPhaseFailed || (tc.failed != "" && s.Name != tc.failed) {
					continue
				}
				if s.Reason == tc.reason && strings.Contains(s.Message, tc.message) {
					found = true
				}
			}
			if !found {
				t.Errorf("no step %q failed (%s) with a message that says %q; run: %q", tc.failed, tc.reason, tc.message, st.Message)
			}
			if len(st.Message) > engine.MaxMessageBytes {
				t.Errorf("the run's message is %d bytes", len(st.Message))
			}
		})
	}
}
