package eval_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
)

func TestRunawayTemplateIsBounded(t *testing.T) {
	ev := newEvaluator(t, 200*time.Millisecond)
	slow := eval.Definition{Name: "slow", Template: `
import "list"

n: 1500
grid: [for i in list.Range(0, n, 1) for j in list.Range(0, n, 1) {i * j}]
total: len(grid)
`}
	start := time.Now()
	out := ev.Evaluate(context.Background(), eval.Request{Definition: slow})
	if out.Phase != eval.Failed || out.Reason != eval.ReasonTimeout {
		t.Fatalf("outcome = %s %s %q, want failed EvalTimeout", out.Phase, out.Reason, out.Message)
	}
	if !strings.Contains(out.Message, `definition "slow"`) {
		t.Errorf("message %q does not name the definition", out.Message)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("evaluation returned after %s, want about the 200ms bound", d)
	}
	// The evaluator keeps working with a fresh CUE context.
	ok := ev.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "ok", Template: "x: 1 + 1\n"}})
	if ok.Phase != eval.Succeeded {
		t.Fatalf("after a timeout, a good template gives %s: %s", ok.Phase, ok.Message)
	}
}

func TestDoVarAndLog(t *testing.T) {
	ev := newEvaluator(t, 0)
	vars := builtin.MapVars{"decision": "continue"}
	logs := &logSink{}
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "vars", Template: `
import (
	"vela/op"
	"vela/builtin"
	"vela/util"
)
get: op.#DoVar & {path: "decision"}
put: builtin.#DoVar & {$params: {method: "Put", path: "seen", value: get.value}}
log: util.#Log & {$params: data: {decision: get.value}}
`},
		Env:    op.Env{Vars: vars, Log: logs},
		Runner: op.Direct,
	})
	if out.Phase != eval.Succeeded {
		t.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	if vars["seen"] != "continue" {
		t.Errorf("vars = %v, want seen=continue", vars)
	}
	if len(logs.lines) != 1 || logs.lines[0] != `{"decision":"continue"}` {
		t.Errorf("logs = %q", logs.lines)
	}
}

type logSink struct{ lines []string }

func (l *logSink) StepLog(_ op.Step, _ int, line string) { l.lines = append(l.lines, line) }

func TestCondition(t *testing.T) {
	ev := newEvaluator(t, 0)
	scope := map[string]any{
		"status":  map[string]any{"deploy-web": map[string]any{"phase": "failed", "failed": true, "succeeded": false}},
		"inputs":  map[string]any{"approved": "yes"},
		"context": map[string]any{"env": "prod"},
	}
	tests := []struct {
		expr    string
		want    bool
		wantErr string
	}{
		{`status["deploy-web"].failed`, true, ""},
		{`status["deploy-web"].phase == "succeeded"`, false, ""},
		{`inputs.approved == "yes" && context.env == "prod"`, true, ""},
		{`context.missing == 1`, false, "context.missing"},
		{`"not a bool"`, false, "cannot use value"},
		{`status.(`, false, "if"},
	}
	for _, tt := range tests {
		got, err := ev.Condition(tt.expr, scope)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want one mentioning %q", tt.expr, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

func TestClassOverride(t *testing.T) {
	ev := newEvaluator(t, 0)
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "poll", Template: `
import "vela/http"

poll: http.#HTTPPost & {#class: "idempotent", $params: url: "http://example.invalid/status"}
send: http.#HTTPPost & {$params: url: "http://example.invalid/send"}
`},
		Runner: echoRunner{},
	})
	if out.Phase != eval.Succeeded || len(out.Calls) != 2 {
		t.Fatalf("%s: %s %v", out.Phase, out.Message, out.Calls)
	}
	classes := map[string]op.Class{}
	for _, c := range out.Calls {
		classes[c.Path] = c.Class
	}
	if classes["poll"] != op.Idempotent || classes["send"] != op.Effect {
		t.Errorf("classes = %v", classes)
	}
}

func TestCheck(t *testing.T) {
	ev := newEvaluator(t, 0)
	if err := ev.Check(eval.Definition{Name: "ok", Template: applyObject}); err != nil {
		t.Errorf("good template: %v", err)
	}
	err := ev.Check(eval.Definition{Name: "bad", Template: "import \"vela/op\"\n\nx: op.#Nope\n"})
	if err == nil || !strings.Contains(err.Error(), `definition "bad"`) || !strings.Contains(err.Error(), "bad.cue:3:") {
		t.Errorf("bad template: %v", err)
	}
}
