package sandbox_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// The shipped request definition's shape, as pkg/eval's benchmark has it.
const request = `
import (
	"vela/op"
	"encoding/json"
)

req: op.#HTTPDo & {
	method: parameter.method
	url:    parameter.url
	request: {
		if parameter.body != _|_ {
			body: json.Marshal(parameter.body)
		}
		header: "Content-Type": "application/json"
	}
}
fail: op.#Steps & {
	if req.response.statusCode > 400 {
		requestFail: op.#Fail & {message: "request of \(parameter.url) is fail: \(req.response.statusCode)"}
	}
}
response: json.Unmarshal(req.response.body)
parameter: {
	url:    string
	method: *"GET" | "POST" | "PUT" | "DELETE"
	body?: {...}
}
`

// echo answers HTTP calls without a network, so only evaluation and the
// round trips to the worker are measured.
var echo = op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
	return op.Result{Returns: map[string]any{"statusCode": 200, "body": `{"ok":true,"id":42}`}}, nil
})

func benchRequest() eval.Request {
	return eval.Request{Definition: eval.Definition{Name: "request", Template: request},
		Parameters: map[string]any{"url": "http://127.0.0.1/x", "method": "POST", "body": map[string]any{"a": 1}},
		Context:    map[string]any{"name": "run", "namespace": "default", "stepName": "s", "stepSessionID": "s-1"},
		Step:       op.Step{StepName: "s", StepID: "s-1"}, Runner: echo, Outputs: []string{"response.id"}}
}

// One evaluation at a time through the pool: the latency of a step.
func BenchmarkPoolEvaluateRequest(b *testing.B) {
	p := newPool(b, sandbox0())
	req := benchRequest()
	if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
		b.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
			b.Fatalf("outcome %s: %s", out.Phase, out.Message)
		}
	}
}

// Eight evaluations at once, as the controller's reconciles make them:
// the throughput of the pool.
func BenchmarkPoolEvaluateRequestParallel(b *testing.B) {
	p := newPool(b, sandbox0())
	req := benchRequest()
	if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
		b.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
					b.Errorf("outcome %s: %s", out.Phase, out.Message)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
}

// sandbox0 is the pool the binary uses by default.
func sandbox0() sandbox.Options { return sandbox.Options{} }
