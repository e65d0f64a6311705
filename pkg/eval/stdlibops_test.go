package eval_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
)

func TestStdlibOps(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: opset.Catalog()})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := ev.StdlibOps()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]eval.StdlibOp{}
	for _, o := range ops {
		byName[o.Package+"."+o.Name] = o
	}
	for _, tc := range []struct {
		name     string
		op       op.Name
		flat     bool
		fixed    map[string]any
		results  map[string]string
		param    string // a parameter the schema lists
		returned string // a field of $returns the schema lists ("": none checked)
	}{
		{name: "vela/http.#HTTPPost", op: op.Name{Provider: "http", Do: "do"}, fixed: map[string]any{"method": "POST"}, param: "url", returned: "statusCode"},
		{name: "vela/http.#HTTPDo", op: op.Name{Provider: "http", Do: "do"}, fixed: map[string]any{"method": "GET"}, param: "url", returned: "statusCode"},
		{name: "vela/kube.#Apply", op: op.Name{Provider: "kube", Do: "apply"}, fixed: map[string]any{"cluster": "", "value": map[string]any{}}, param: "value", returned: "value"},
		{name: "vela/op.#Read", op: op.Name{Provider: "kube", Do: "read"}, flat: true, fixed: map[string]any{"cluster": ""},
			results: map[string]string{"value": "value", "err": "err"}, param: "cluster"},
		{name: "vela/op.#HTTPPost", op: op.Name{Provider: "http", Do: "do"}, flat: true, fixed: map[string]any{"method": "POST"},
			results: map[string]string{"response": ""}, param: "url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := byName[tc.name]
			if !ok {
				t.Fatalf("not listed; have %d ops", len(ops))
			}
			if o.Op != tc.op || o.Flat != tc.flat {
				t.Errorf("op %s flat %v, want %s flat %v", o.Op, o.Flat, tc.op, tc.flat)
			}
			if diff := cmp.Diff(tc.fixed, o.Fixed); diff != "" {
				t.Errorf("fixed parameters (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.results, o.Results); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if o.Params == nil || o.Params.Properties[tc.param] == nil {
				t.Errorf("parameters lack %q: %+v", tc.param, o.Params)
			}
			if _, has := o.Params.Properties["$returns"]; has {
				t.Error("$returns is listed as a parameter")
			}
			if tc.returned != "" && (o.Returns == nil || o.Returns.Properties[tc.returned] == nil) {
				t.Errorf("returns lack %q: %+v", tc.returned, o.Returns)
			}
		})
	}
	// Field comments come from the source, a derived definition's from
	// the one it is built on.
	for _, name := range []string{"vela/http.#HTTPDo", "vela/http.#HTTPPost"} {
		var got string
		if p := byName[name].Params; p != nil && p.Properties["request"] != nil {
			if f := p.Properties["request"].Properties["timeout"]; f != nil {
				got = f.Description
			}
		}
		if want := `A Go duration, e.g. "10s".`; got != want {
			t.Errorf("%s: request.timeout's description is %q, want %q", name, got, want)
		}
	}
	// Shared schemas (no #provider or #do) are not ops.
	for _, o := range ops {
		if o.Op.Provider == "" || o.Op.Do == "" {
			t.Errorf("%s.%s listed without an op", o.Package, o.Name)
		}
	}
}
