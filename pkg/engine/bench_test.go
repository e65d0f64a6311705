package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
)

// benchDeploy applies a Deployment, reads it back and waits until it is
// ready: the shape of the usual deploy step.
const benchDeploy = `
import (
	"vela/kube"
	"vela/builtin"
)

apply: kube.#Apply & {$params: value: {
	apiVersion: "apps/v1"
	kind:       "Deployment"
	metadata: {name: parameter.name, namespace: context.namespace}
	spec: replicas: parameter.replicas
}}
read: kube.#Read & {$params: value: {
	apiVersion: "apps/v1"
	kind:       "Deployment"
	metadata: apply.$returns.value.metadata
}}
wait: builtin.#ConditionalWait & {$params: continue: read.$returns.value.status.ready}
parameter: {
	name:     string
	replicas: *1 | int
}
`

// benchMessage is about the least a step can do: one op.
const benchMessage = `
import "vela/builtin"

say: builtin.#Message & {$params: message: parameter.name}
parameter: {...}
`

// benchKubeParams is the $params shape of kube.apply and kube.read.
type benchKubeParams struct {
	Cluster string         `json:"cluster"`
	Value   map[string]any `json:"value"`
}

type benchKubeOp struct{}

func (benchKubeOp) NewParams() any     { return &benchKubeParams{} }
func (benchKubeOp) Class(any) op.Class { return op.Idempotent }
func (benchKubeOp) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, errors.New("run by benchOps")
}

// benchOps answers kube calls at once with the object, ready, and runs the
// builtin ops for real.
var benchOps = op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
	if call.Name.Provider != "kube" {
		return op.Direct.Run(ctx, call)
	}
	p := call.Params.(*benchKubeParams)
	obj := make(map[string]any, len(p.Value)+1)
	for k, v := range p.Value {
		obj[k] = v
	}
	obj["status"] = map[string]any{"ready": true}
	return op.Result{Returns: map[string]any{"value": obj}}, nil
})

type benchRig struct {
	defs engine.DefinitionMap
	ev   *eval.Evaluator
}

func newBenchRig(b *testing.B) *benchRig {
	reg := op.NewRegistry().Add(builtin.New(), builtin.NewLog())
	reg.Register(op.Name{Provider: "kube", Do: "apply"}, benchKubeOp{})
	reg.Register(op.Name{Provider: "kube", Do: "read"}, benchKubeOp{})
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		b.Fatal(err)
	}
	return &benchRig{defs: engine.DefinitionMap{
		"deploy":  {Name: "deploy", Template: benchDeploy},
		"message": {Name: "message", Template: benchMessage},
	}, ev: ev}
}

func benchStep(name, typ string, dependsOn ...string) v1alpha1.WorkflowStep {
	props, _ := json.Marshal(map[string]any{"name": name, "replicas": 2})
	return v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{
		Name: name, Type: typ, DependsOn: dependsOn, Properties: &runtime.RawExtension{Raw: props},
	}}
}

// runToEnd ticks a run with a fresh status and journal until it finishes
// and returns the number of ticks.
func (r *benchRig) runToEnd(b *testing.B, steps []v1alpha1.WorkflowStep, mode *v1alpha1.WorkflowExecuteMode) int {
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default", UID: "uid-bench"}}
	j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for ticks := 1; ; ticks++ {
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: run, Steps: steps, Mode: mode, Definitions: r.defs, Evaluator: r.ev,
			Ops: benchOps, Journal: j, Now: func() time.Time { return now },
		})
		if err != nil {
			b.Fatal(err)
		}
		run.Status = res.Status
		if res.Status.Finished {
			if res.Status.Phase != v1alpha1.WorkflowRunSucceeded {
				b.Fatalf("run %s: %s", res.Status.Phase, res.Status.Message)
			}
			return ticks
		}
		if ticks == 100 {
			b.Fatalf("run not finished after %d ticks: %s", ticks, res.Status.Phase)
		}
		now = now.Add(time.Second)
	}
}

// bench runs the run to its end b.N times and reports the ticks it took.
func (r *benchRig) bench(b *testing.B, steps []v1alpha1.WorkflowStep, mode *v1alpha1.WorkflowExecuteMode) {
	ticks := r.runToEnd(b, steps, mode) // compile the template outside the timing
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.runToEnd(b, steps, mode)
	}
	b.ReportMetric(float64(ticks), "ticks/run")
}

// BenchmarkTick5StepSequential runs five deploy steps one after another,
// from a fresh status to the end. Target: under 10ms a run.
func BenchmarkTick5StepSequential(b *testing.B) {
	r := newBenchRig(b)
	var steps []v1alpha1.WorkflowStep
	for i := 0; i < 5; i++ {
		steps = append(steps, benchStep(fmt.Sprintf("deploy-%d", i), "deploy"))
	}
	r.bench(b, steps, nil)
}

// BenchmarkTick100StepDAG runs 100 deploy steps in DAG mode, in ten layers
// of ten; each step depends on two steps of the layer before. Target: under
// 100ms a run.
func BenchmarkTick100StepDAG(b *testing.B) {
	r := newBenchRig(b)
	r.bench(b, benchLayers("deploy"), &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeDAG})
}

// BenchmarkTick100StepDAGOneOp is BenchmarkTick100StepDAG with a one-op
// template, so that CUE costs little beside the engine.
func BenchmarkTick100StepDAGOneOp(b *testing.B) {
	r := newBenchRig(b)
	r.bench(b, benchLayers("message"), &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeDAG})
}

// benchLayers is 100 steps of type typ in ten layers of ten.
func benchLayers(typ string) []v1alpha1.WorkflowStep {
	const layers, width = 10, 10
	name := func(l, k int) string { return fmt.Sprintf("l%d-s%d", l, k) }
	var steps []v1alpha1.WorkflowStep
	for l := 0; l < layers; l++ {
		for k := 0; k < width; k++ {
			var deps []string
			if l > 0 {
				deps = []string{name(l-1, k), name(l-1, (k+1)%width)}
			}
			steps = append(steps, benchStep(name(l, k), typ, deps...))
		}
	}
	return steps
}

// BenchmarkTick5TimedSuspends runs five suspend steps of one second each,
// one after another, through the shipped suspend definition: each step is
// evaluated when it suspends and again when it resumes.
func BenchmarkTick5TimedSuspends(b *testing.B) {
	r := newBenchRig(b)
	src, err := definition.FromFile(filepath.Join("..", "..", "definitions", "suspend.cue"))
	if err != nil {
		b.Fatal(err)
	}
	r.defs["suspend"] = src.Definition
	var steps []v1alpha1.WorkflowStep
	for i := 0; i < 5; i++ {
		steps = append(steps, v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{
			Name: fmt.Sprintf("pause-%d", i), Type: "suspend",
			Properties: &runtime.RawExtension{Raw: []byte(`{"duration":"1s","message":"paused"}`)},
		}})
	}
	r.bench(b, steps, nil)
}
