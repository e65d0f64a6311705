package eval_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// A reference to a parameter field the parameter cannot have is a compile
// error with its position; references to fields it may have are not.
func TestParameterReferences(t *testing.T) {
	const decl = `import "vela/op"

parameter: {
	name: string
	opt?: {a: string}
	labels: [string]: string
	extra: {...}
	kind: *{replicas: int} | {schedule: string}
	items: [...{port: int}]
	ref: #Ref
}
#Ref: {ns: string}
`
	cases := []struct {
		name, body string
		want       []string // "" means no error
	}{
		{"declared", `x: parameter.name`, nil},
		{"typo in interpolation", `msg: op.#Log & {data: "hi \(parameter.nme)"}`,
			[]string{`reference to parameter.nme, which the parameter does not declare (declared: name, opt, labels, extra, kind, items, ref)`, "typo.cue:14:"}},
		{"optional field", `if parameter.opt != _|_ {x: parameter.opt.a}`, nil},
		{"nested typo under optional", `if parameter.opt != _|_ {x: parameter.opt.b}`, []string{"parameter.opt.b", "(declared: a)"}},
		{"pattern constraint", `x: parameter.labels.anything`, nil},
		{"open struct, any depth", `x: parameter.extra.y.z`, nil},
		{"either branch of a disjunction", `x: parameter.kind.replicas, y: parameter.kind.schedule`, nil},
		{"neither branch of a disjunction", `x: parameter.kind.cron`, []string{"parameter.kind.cron"}},
		// CUE itself refuses this one: #Ref is closed.
		{"through a definition", `x: parameter.ref.namespace`, []string{"undefined field: namespace", "typo.cue:14:"}},
		{"after an index", `x: parameter.items[0].prt`, nil},
		{"guard on an undeclared field", `if parameter.nme != _|_ {x: 1}`, []string{"parameter.nme"}},
		{"a nested field named parameter", `call: {parameter: {other: 1}, y: parameter.other}`, nil},
		{"every bad reference", `x: parameter.a, y: parameter.b`, []string{"parameter.a", "parameter.b"}},
	}
	ev := newEvaluator(t, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ev.Check(eval.Definition{Name: "typo", Template: decl + "\n" + c.body + "\n"})
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// A template that declares no parameter takes any property.
	if err := ev.Check(eval.Definition{Name: "implicit", Template: "x: parameter.whatever\n"}); err != nil {
		t.Errorf("implicit parameter: %v", err)
	}
}

// At run time a step whose template refers to a parameter that does not
// exist fails at once, naming the definition and the position; it does not
// wait for a value no property can give.
func TestUndefinedParameterFailsTheStep(t *testing.T) {
	ev := newEvaluator(t, 0)
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "greet", Template: `import "vela/op"

parameter: name: string
msg: op.#Log & {data: "hello \(parameter.nme)"}
`},
		Parameters: map[string]any{"name": "world"},
		Runner:     op.Direct,
	})
	if out.Phase != eval.Failed {
		t.Fatalf("outcome %s %s: %s, want failed", out.Phase, out.Reason, out.Message)
	}
	for _, w := range []string{`definition "greet"`, "parameter.nme", "greet.cue:4:"} {
		if !strings.Contains(out.Message, w) {
			t.Errorf("message %q does not contain %q", out.Message, w)
		}
	}
}
