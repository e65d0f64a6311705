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

