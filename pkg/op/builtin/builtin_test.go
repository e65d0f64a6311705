package builtin_test

import (
	"context"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	optest.Run(t, optest.Suite{
		New: func() op.Family { return builtin.New() },
		Cases: []optest.Case{
			{Name: "wait met", Do: "wait", Params: func() any { return params(t, "wait", map[string]any{"continue": true}) }},
			{Name: "message", Do: "message", Params: func() any { return params(t, "message", map[string]any{"message": "hi"}) }},
			{Name: "get var", Do: "var", Env: op.Env{Vars: builtin.MapVars{"a": 1}},
				Params: func() any { return params(t, "var", map[string]any{"method": "Get", "path": "a"}) }},
			{Name: "bad duration", Do: "suspend", Invalid: true,
				Params: func() any { return params(t, "suspend", map[string]any{"duration": "soon"}) }},
			{Name: "no vars", Do: "var", Invalid: true,
				Params: func() any { return params(t, "var", map[string]any{"path": "a"}) }},
		},
	})
	optest.Run(t, optest.Suite{
		New: func() op.Family { return builtin.NewLog() },
		Cases: []optest.Case{
			{Name: "log", Do: "log", Params: func() any { return params(t, "log", map[string]any{"data": "x"}) }},
		},
	})
}

// params builds an op's params the way the evaluator would, from JSON-shaped
// data.
func params(t *testing.T, do string, in map[string]any) any {
	t.Helper()
	var o op.Op
	if do == "log" {
		o = builtin.NewLog().Ops()[do]
	} else {
		o = builtin.New().Ops()[do]
	}
	p := o.NewParams()
	if err := decodeInto(in, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestControlOps(t *testing.T) {
	ops := builtin.New().Ops()
	tests := []struct {
		do   string
		in   map[string]any
		want *op.Stop
		msg  string
	}{
		{"wait", map[string]any{"continue": false, "message": "not yet"}, &op.Stop{Kind: op.Wait, Message: "not yet"}, "not yet"},
		{"wait", map[string]any{"continue": true, "message": "not yet"}, nil, ""},
		{"suspend", map[string]any{"duration": "1m30s"}, &op.Stop{Kind: op.Suspend, Duration: 90 * time.Second}, ""},
		{"suspend", map[string]any{}, &op.Stop{Kind: op.Suspend}, ""},
		{"fail", map[string]any{"message": "no"}, &op.Stop{Kind: op.Fail, Message: "no"}, "no"},
		{"break", map[string]any{}, &op.Stop{Kind: op.Break}, ""},
		{"message", map[string]any{"message": "m"}, nil, "m"},
	}
	for _, tt := range tests {
		o := ops[tt.do]
		p := o.NewParams()
		if err := decodeInto(tt.in, p); err != nil {
			t.Fatal(err)
		}
		if o.Class(p) == op.Control && tt.do == "message" {
			t.Errorf("message must not be a control op")
		}
		res, err := o.Run(context.Background(), &op.Call{Params: p})
		if err != nil {
			t.Fatalf("%s %v: %v", tt.do, tt.in, err)
		}
		if (res.Stop == nil) != (tt.want == nil) || (res.Stop != nil && *res.Stop != *tt.want) || res.Message != tt.msg {
			t.Errorf("%s %v: got stop %+v message %q, want %+v %q", tt.do, tt.in, res.Stop, res.Message, tt.want, tt.msg)
		}
	}
}

func TestVarPutThenGet(t *testing.T) {
	vars := builtin.MapVars{}
	o := builtin.New().Ops()["var"]
	put := o.NewParams()
	_ = decodeInto(map[string]any{"method": "Put", "path": "decision", "value": "rollback"}, put)
	if _, err := o.Run(context.Background(), &op.Call{Params: put, Env: op.Env{Vars: vars}}); err != nil {
		t.Fatal(err)
	}
	get := o.NewParams()
	_ = decodeInto(map[string]any{"path": "decision"}, get)
	res, err := o.Run(context.Background(), &op.Call{Params: get, Env: op.Env{Vars: vars}})
	if err != nil || res.Returns.(map[string]any)["value"] != "rollback" {
		t.Fatalf("get after put: %v %v", res.Returns, err)
	}
}
