package sandbox_test

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// A template that reads its returns and parameters' types back: a
// whole number must stay an int, a fraction a float, and bytes bytes,
// across the parent and the worker in both directions.
const typesTemplate = `
import "vela/op"

got: op.#Read & {value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}}
kinds: {
	paramInt:   (parameter.i & int) != _|_
	paramFloat: (parameter.f & float) != _|_
	retInt:     (got.value.n & int) != _|_
	retFloat:   (got.value.f & float) != _|_
	retBig:     got.value.big == 18446744073709551616
	retNeg:     got.value.neg == -7
}
parameter: {
	i: _
	f: _
}
`

func TestValuesKeepTheirTypes(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	runner := op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
		big, _ := new(big.Int).SetString("18446744073709551616", 10)
		return op.Result{Returns: map[string]any{"value": map[string]any{
			"n": int64(3), "f": 2.5, "big": big, "neg": -7}}}, nil
	})
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "types", Template: typesTemplate},
		Parameters: map[string]any{"i": 7, "f": 0.5},
		Step:       op.Step{StepName: "s", StepID: "s-1"},
		Runner:     runner,
		Outputs:    []string{"kinds", "got.value.n"},
	})
	if out.Phase != eval.Succeeded {
		t.Fatalf("outcome %s %s: %s", out.Phase, out.Reason, out.Message)
	}
	want := "map[paramFloat:true paramInt:true retBig:true retFloat:true retInt:true retNeg:true]"
	if got := fmt.Sprint(out.Outputs[0].Value); got != want {
		t.Errorf("kinds = %s, want %s", got, want)
	}
	if n, ok := out.Outputs[1].Value.(int64); !ok || n != 3 {
		t.Errorf("output got.value.n = %#v, want int64(3)", out.Outputs[1].Value)
	}
}

// Pure ops (wait, fail, message) are computation: the worker runs them
// itself, and only the others reach the parent's runner.
func TestPureOpsRunInTheWorker(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	const tmpl = `
import "vela/op"

got: op.#Read & {value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}}
say: op.#Message & {message: "read \(got.value.data.ready)"}
wait: op.#ConditionalWait & {continue: got.value.data.ready == "true"}
`
	var mu sync.Mutex
	var reached []string
	runner := op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
		mu.Lock()
		reached = append(reached, c.Path)
		mu.Unlock()
		if c.Path != "got" {
			return op.Direct.Run(ctx, c)
		}
		return op.Result{Returns: map[string]any{"value": map[string]any{"data": map[string]any{"ready": "no"}}}}, nil
	})
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "waits", Template: tmpl},
		Step:       op.Step{StepName: "s", StepID: "s-1"},
		Runner:     runner,
	})
	if out.Phase != eval.Waiting {
		t.Fatalf("outcome %s %s: %s; want waiting", out.Phase, out.Reason, out.Message)
	}
	if strings.Join(reached, ",") != "got" {
		t.Errorf("calls that reached the parent: %v, want only got", reached)
	}
	var paths []string
	for _, c := range out.Calls {
		paths = append(paths, c.Path)
	}
	if strings.Join(paths, ",") != "got,say,wait" {
		t.Errorf("calls recorded %v, want got,say,wait", paths)
	}
}

// A value that does not encode fails its step or call with a message,
// and never costs the worker: nothing half-written reaches its stream.
func TestValuesThatDoNotEncode(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	pids := fmt.Sprint(p.PIDs())
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": "http://example.invalid", "n": make(chan int)},
		Step:       op.Step{StepName: "send", StepID: "a"},
	})
	if out.Phase != eval.Failed || out.Reason != eval.ReasonParameter || !strings.Contains(out.Message, "not plain data") {
		t.Errorf("parameters with a channel: outcome %s %s: %s; want failed %s", out.Phase, out.Reason, out.Message, eval.ReasonParameter)
	}
	out = p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": "http://example.invalid", "n": 1},
		Step:       op.Step{StepName: "send", StepID: "b"},
		Runner: op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
			return op.Result{Returns: map[string]any{"response": func() {}}}, nil
		}),
	})
	if out.Phase != eval.Failed || !strings.Contains(out.Message, "not plain data") {
		t.Errorf("returns with a func: outcome %s %s: %s; want failed", out.Phase, out.Reason, out.Message)
	}
	if st := p.Stats(); st.Killed+st.Died != 0 || fmt.Sprint(p.PIDs()) != pids {
		t.Errorf("the worker was lost: stats %+v, pids %v, were %s", st, p.PIDs(), pids)
	}
	// And it still serves.
	srv, _ := counter(t)
	out = p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": srv.URL, "n": 1},
		Step:       op.Step{StepName: "send", StepID: "c"},
		Runner:     op.Direct,
	})
	if out.Phase != eval.Succeeded {
		t.Errorf("after them: outcome %s %s: %s", out.Phase, out.Reason, out.Message)
	}
}

// A #Terminate crosses the process boundary as what it is: the worker
// runs it (it is pure) and the parent gets a Terminating outcome with the
// template's message, after the effect before it reached the parent.
func TestTerminateRoundTrip(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	const tmpl = `
import "vela/op"

notify: op.#HTTPPost & {url: "http://hooks.example/notify"}
end: op.#Terminate & {message: "rollout stopped at \(notify.response.statusCode)"}
never: op.#Apply & {value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}}
`
	var mu sync.Mutex
	var reached []string
	runner := op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
		mu.Lock()
		reached = append(reached, c.Path)
		mu.Unlock()
		if c.Path != "notify" {
			return op.Direct.Run(ctx, c)
		}
		return op.Result{Returns: map[string]any{"statusCode": int64(202), "body": ""}}, nil
	})
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "gate", Template: tmpl},
		Step:       op.Step{StepName: "s", StepID: "s-1"},
		Runner:     runner,
	})
	if out.Phase != eval.Terminating || out.Reason != eval.ReasonTerminate || out.Message != "rollout stopped at 202" {
		t.Fatalf("outcome %s %s: %q; want terminating Terminate \"rollout stopped at 202\"", out.Phase, out.Reason, out.Message)
	}
	if strings.Join(reached, ",") != "notify" {
		t.Errorf("calls that reached the parent: %v, want only notify", reached)
	}
	var calls []string
	for _, c := range out.Calls {
		calls = append(calls, c.Path+":"+c.Stop)
	}
	if got := strings.Join(calls, ","); got != "notify:,end:terminate" {
		t.Errorf("calls recorded %s, want notify:,end:terminate", got)
	}
}
