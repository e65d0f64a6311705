package eval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
)

// The fuzz targets feed the evaluator what users write: a step's if, an
// output's valueFrom, a definition's template with a step's properties.
// go test runs them over their seeds (f.Add and testdata/fuzz/<Target>);
// make fuzz runs each for longer. Every input must come back as an outcome
// or an error that names what was evaluated; a panic caught at the
// evaluator's boundary ("internal error") is a finding too: keep the
// input as a seed and fix the cause.

// fuzzTimeout bounds fuzzed CUE work; a runaway input fails, it does not
// stall the fuzzer.
const fuzzTimeout = 2 * time.Second

// internalError reports whether an error or message comes from a panic
// caught at the evaluator's boundary.
func internalError(msg string) bool { return strings.Contains(msg, "internal error") }

// conditionScope is the shape of the scope pkg/engine gives an if: every
// step's status, the step's inputs and its context.
func conditionScope(ctxJSON []byte) map[string]any {
	stepStatus := func(phase, reason string) map[string]any {
		return map[string]any{
			"phase": phase, "reason": reason, "message": "",
			"succeeded": phase == "succeeded", "failed": phase == "failed",
			"skipped": phase == "skipped", "timeout": reason == "Timeout",
		}
	}
	ctx := map[string]any{"name": "run", "namespace": "default", "stepName": "s2"}
	var extra map[string]any
	if json.Unmarshal(ctxJSON, &extra) == nil {
		for k, v := range extra {
			ctx[k] = v
		}
	}
	return map[string]any{
		"status": map[string]any{
			"deploy-web": stepStatus("failed", "OpError"),
			"s1":         stepStatus("succeeded", ""),
			"x":          stepStatus("pending", ""),
		},
		"inputs":  map[string]any{"approved": "yes", "count": 3.0, "list": []any{1.0, "a"}},
		"context": ctx,
	}
}

func FuzzCondition(f *testing.F) {
	for _, expr := range []string{
		`status["deploy-web"].failed`,
		`status["deploy-web"].phase == "succeeded"`,
		`inputs.approved == "yes" && context.env == "prod"`,
		`context.missing == 1`,
		`"not a bool"`,
		`status.(`,
		`x ==== y`,
		`status.x ==== (`,
		`len(inputs.list) > 1 && inputs.count * 2 == 6`,
		`[for k, v in status if v.failed {k}][0] == "deploy-web"`,
		`strings.HasPrefix(context.name, "r")`,
		`status.s1.succeeded || !status.x.skipped`,
		`{a: 1}.a == 1`,
		`1 / 0 == 1`,
		`_|_`,
		`*true | false`,
		`context.env =~ "^pr"`,
	} {
		f.Add(expr, []byte(`{"env": "prod", "replicas": 3}`))
	}
	f.Add(`context.deep.a.a.a`, []byte(`{"deep": {"a": {"a": {"a": true}}}}`))
	ev := newEvaluator(f, fuzzTimeout)
	f.Fuzz(func(t *testing.T, expr string, ctxJSON []byte) {
		_, err := ev.Condition(expr, conditionScope(ctxJSON))
		if err == nil {
			return
		}
		if internalError(err.Error()) {
			t.Fatalf("if %q: %v", expr, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("if %q", expr)) && !strings.HasPrefix(err.Error(), "condition scope") {
			t.Errorf("error %q does not name the expression %q", err, expr)
		}
	})
}

// valueFromTemplate is evaluated once; valueFrom expressions are fuzzed
// against it.
const valueFromTemplate = `
import "vela/op"

apply: op.#Apply & {
	value: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		metadata: {name: parameter.name, namespace: "default"}
		data: parameter.data
	}
}
count: len(parameter.data)
names: [for k, _ in parameter.data {k}]
greeting: "hello \(parameter.name)"
parameter: {
	name: string
	data: [string]: string
	missing?: int
}
`

func FuzzValueFrom(f *testing.F) {
	for _, expr := range []string{
		`apply.value.metadata.name`,
		`apply.$returns.value.status.phase`,
		`count + 1`,
		`names[0]`,
		`greeting`,
		`parameter.missing`,
		`{n: count, g: greeting}`,
		`[for n in names {n + "!"}]`,
		`strings.ToUpper(greeting)`,
		`apply.value.data["a"]`,
		`x ==== y`,
		`apply.value.(`,
		`nope`,
		`count / 0`,
	} {
		f.Add(expr)
	}
	ev := newEvaluator(f, fuzzTimeout)
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "apply-config", Template: valueFromTemplate},
		Parameters: map[string]any{"name": "demo", "data": map[string]any{"a": "1", "b": "2"}},
		Runner:     echoRunner{},
	})
	if out.Phase != eval.Succeeded {
		f.Fatalf("%s: %s", out.Phase, out.Message)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		_, err := out.Value.Eval(expr)
		if err == nil {
			return
		}
		if internalError(err.Error()) {
			t.Fatalf("valueFrom %q: %v", expr, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", expr)) {
			t.Errorf("error %q does not name the expression %q", err, expr)
		}
	})
}

// fuzzTemplateSeeds are the golden cases' templates and properties, and
// the benchmarks' shapes.
func fuzzTemplateSeeds(f *testing.F) [][2][]byte {
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][2][]byte{
		{[]byte(request), []byte(`{"url": "http://127.0.0.1/x", "method": "POST", "body": {"a": 1}}`)},
		{[]byte(applyObject), []byte(`{"value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}`)},
		{[]byte(valueFromTemplate), []byte(`{"name": "demo", "data": {"a": "1"}}`)},
		{[]byte("x: {a: {b: {c: [[[1]]]}}}\n"), nil},
		{[]byte("x: parameter.a\n"), []byte(`{"a": [[[[{"b": 1}]]]]}`)},
		{[]byte("x: parameter\n"), []byte("==")}, // not JSON; CUE's parser crashed on it
	}
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var seed [2][]byte
		for _, fl := range ar.Files {
			switch fl.Name {
			case "definition.cue":
				seed[0] = fl.Data
			case "properties.json":
				seed[1] = fl.Data
			}
		}
		seeds = append(seeds, seed)
	}
	return seeds
}

func FuzzTemplate(f *testing.F) {
	for _, s := range fuzzTemplateSeeds(f) {
		f.Add(string(s[0]), s[1])
	}
	ev := newEvaluator(f, fuzzTimeout)
	phases := map[eval.Phase]bool{eval.Succeeded: true, eval.Waiting: true, eval.Suspending: true, eval.Failed: true, eval.Broken: true, eval.Terminating: true}
	f.Fuzz(func(t *testing.T, template string, properties []byte) {
		def := eval.Definition{Name: "fuzzed", Template: template}
		if err := ev.Check(def); err != nil {
			if internalError(err.Error()) {
				t.Fatalf("Check: %v", err)
			}
			if !strings.Contains(err.Error(), `definition "fuzzed"`) {
				t.Errorf("Check error %q does not name the definition", err)
			}
		}
		req := eval.Request{
			Definition: def,
			Context:    map[string]any{"name": "run", "namespace": "default", "stepName": "s", "stepSessionID": "s-1"},
			Step:       op.Step{RunName: "run", Namespace: "default", StepName: "s", StepID: "s-1"},
			Env:        op.Env{Vars: builtin.MapVars{}, Log: &logSink{}},
			Runner:     echoRunner{},
			Data:       true,
		}
		if len(properties) > 0 {
			req.Parameters = json.RawMessage(properties)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*fuzzTimeout)
		defer cancel()
		out := ev.Evaluate(ctx, req)
		if !phases[out.Phase] {
			t.Fatalf("outcome phase %q (%s: %s)", out.Phase, out.Reason, out.Message)
		}
		if internalError(out.Message) {
			t.Fatalf("%s %s: %s", out.Phase, out.Reason, out.Message)
		}
		if (out.Phase == eval.Failed || out.Phase == eval.Broken) && out.Reason != eval.ReasonOp && out.Reason != eval.ReasonFail &&
			!strings.Contains(out.Message, `"fuzzed"`) {
			t.Errorf("%s %s: message %q does not name the definition", out.Phase, out.Reason, out.Message)
		}
	})
}
