package eval_test

import (
	"context"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// The shapes of the shipped request and apply-object definitions.
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
		if parameter.header != _|_ {
			header: parameter.header
		}
	}
}
fail: op.#Steps & {
	if req.response.statusCode > 400 {
		requestFail: op.#Fail & {
			message: "request of \(parameter.url) is fail: \(req.response.statusCode)"
		}
	}
}
response: json.Unmarshal(req.response.body)
parameter: {
	url:    string
	method: *"GET" | "POST" | "PUT" | "DELETE"
	body?: {...}
	header?: [string]: string
}
`

const applyObject = `
import "vela/kube"

apply: kube.#Apply & {
	$params: parameter
}
parameter: {
	value: {...}
	cluster: *"" | string
}
`

func configMap() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "demo", "namespace": "default", "labels": map[string]any{"app": "demo"}},
		"data":     map[string]any{"a": "1", "b": "2"},
	}
}

// echoRunner answers HTTP with a JSON body and kube ops with the object
// they were given, so only the evaluator's own cost is measured.
type echoRunner struct{}

func (echoRunner) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	switch call.Name.Provider {
	case "http":
		return op.Result{Returns: map[string]any{"statusCode": 200, "body": `{"ok":true,"id":42}`}}, nil
	case "kube":
		p := call.Params.(*kubeParams)
		obj := map[string]any{}
		for k, v := range p.Value {
			obj[k] = v
		}
		obj["status"] = map[string]any{"phase": "Active"}
		return op.Result{Returns: map[string]any{"value": obj}}, nil
	}
	return op.Direct.Run(ctx, call)
}

func benchmarkStep(b *testing.B, def eval.Definition, params map[string]any) {
	ev := newEvaluator(b, 0)
	req := eval.Request{Definition: def, Parameters: params, Runner: echoRunner{},
		Context: map[string]any{"name": "run", "namespace": "default", "stepName": "s", "stepSessionID": "s-1"}}
	if out := ev.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
		b.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := ev.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
			b.Fatalf("outcome %s: %s", out.Phase, out.Message)
		}
	}
}

func BenchmarkEvaluateRequest(b *testing.B) {
	benchmarkStep(b, eval.Definition{Name: "request", Template: request},
		map[string]any{"url": "http://127.0.0.1/x", "method": "POST", "body": map[string]any{"a": 1}})
}

func BenchmarkEvaluateApplyObject(b *testing.B) {
	benchmarkStep(b, eval.Definition{Name: "apply-object", Template: applyObject},
		map[string]any{"value": configMap()})
}
