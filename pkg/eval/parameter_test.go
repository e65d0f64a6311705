package eval_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// A parameter with each construct the schema must render: defaults,
// enums, a disjunction of types, optional and required fields, nested
// structs, lists of structs, a pattern struct, an open struct, comments.
var paramDef = eval.Definition{Name: "deploy", Template: `
import "vela/op"

apply: op.#Apply & {value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: parameter.name}}
parameter: {
	// +usage=Specify the name of the object
	name: string
	// +usage=The HTTP method
	method: *"GET" | "POST" | "PUT"
	// how many replicas
	replicas: *1 | int & >=0
	body?: {...}
	labels?: [string]: string
	ports?: [...{
		// +usage=The port number
		port:  int & >0 & <65536
		name?: string
	}]
	// +short=t
	// +usage=A string or a number
	target: string | int
	image: close({
		repo: string
		tag:  *"latest" | string
	})
}
`}

func TestParameterSchema(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	s, err := ev.ParameterSchema(paramDef)
	if err != nil {
		t.Fatal(err)
	}
	if s.SchemaURI != defschema.Draft {
		t.Errorf("$schema = %q, want %q", s.SchemaURI, defschema.Draft)
	}
	got := defschema.Rows(s)
	want := []defschema.Row{
		{Name: "name", Type: "string", Required: true, Description: "Specify the name of the object"},
		{Name: "method", Type: `"GET" \| "POST" \| "PUT"`, Default: `"GET"`, Description: "The HTTP method"},
		{Name: "replicas", Type: "integer", Default: "1", Description: "how many replicas"},
		{Name: "body", Type: "object"},
		{Name: "labels", Type: "map[string]string"},
		{Name: "ports", Type: "[object]"},
		{Name: "ports[].port", Type: "integer", Required: true, Description: "The port number"},
		{Name: "ports[].name", Type: "string"},
		{Name: "target", Type: `string \| integer`, Required: true, Description: "A string or a number"},
		{Name: "image", Type: "object", Required: true},
		{Name: "image.repo", Type: "string", Required: true},
		{Name: "image.tag", Type: "string", Default: `"latest"`},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
	if !s.Properties["image"].Closed() {
		t.Error("image, a closed struct, has no additionalProperties: false")
	}
	if s.Closed() {
		t.Error("the parameter, an open struct, is closed in the schema")
	}
	// The schema is JSON a UI can read back, defaults and all.
	b, err := s.Bounded()
	if err != nil {
		t.Fatal(err)
	}
	var back defschema.Schema
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Properties["method"].Default) != `"GET"` || !back.Properties["image"].Closed() {
		t.Errorf("schema read back from JSON lost the default or closedness: %s", b)
	}
}

func TestParameterSchemaOfBrokenTemplate(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	_, err := ev.ParameterSchema(eval.Definition{Name: "broken", Template: "parameter: {a: string\n"})
	if err == nil || !strings.Contains(err.Error(), `definition "broken"`) {
		t.Fatalf("err = %v, want one naming the definition", err)
	}
}

func TestValidateParameters(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	good := map[string]any{"name": "a", "target": 3, "image": map[string]any{"repo": "r"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		params map[string]any
		later  []string
		want   []string // one entry per problem: substrings of it
	}{
		{name: "good", params: good},
		{name: "extra field on the open parameter", params: with("nmae", "x")},
		{name: "wrong type", params: with("replicas", "three"),
			want: []string{`properties.replicas: got "three", want *1 | int & >=0`}},
		{name: "outside the enum", params: with("method", "PATCH"),
			want: []string{`properties.method: got "PATCH", want *"GET" | "POST" | "PUT"`}},
		{name: "out of bound in a list", params: with("ports", []any{map[string]any{"port": 0}}),
			want: []string{`properties.ports[0].port: got 0, want int & >0 & <65536 (invalid value 0 (out of bound >0))`}},
		{name: "unknown field of a closed struct", params: with("image", map[string]any{"repo": "r", "tga": "v1"}),
			want: []string{`properties.image.tga: field not allowed: the parameter field image does not have it (it has repo, tag)`}},
		{name: "required missing", params: with("name", nil),
			want: []string{`properties.name: required field missing: want string`}},
		{name: "required nested missing", params: with("image", map[string]any{}),
			want: []string{`properties.image.repo: required field missing: want string`}},
		{name: "missing but filled by an input later", params: with("name", nil), later: []string{"name"}},
		{name: "nested missing, filled later", params: with("image", map[string]any{}), later: []string{"image.repo"}},
		{name: "several problems at once", params: map[string]any{"method": 1, "replicas": -1, "target": true, "image": map[string]any{"repo": "r"}},
			want: []string{`properties.method: got 1`, `properties.name: required field missing`, `properties.replicas: got -1`, `properties.target: got true, want string | int`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ev.ValidateParameters([]eval.ParameterCheck{{Step: "s1", Definition: paramDef, Parameters: tc.params, Later: tc.later}})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var perr *eval.ParameterError
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v, want a *eval.ParameterError", err)
			}
			if len(perr.Problems) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", len(perr.Problems), len(tc.want), err)
			}
			for i, w := range tc.want {
				if got := perr.Problems[i].String(); !strings.Contains(got, w) || !strings.Contains(got, `step "s1" (definition "deploy")`) {
					t.Errorf("problem %d = %q, want it to name the step and definition and contain %q", i, got, w)
				}
			}
		})
	}
}

// Problems of several steps come in one error, each naming its step; a
// definition that does not compile is left to the step's own evaluation.
func TestValidateParametersAcrossSteps(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	err := ev.ValidateParameters([]eval.ParameterCheck{
		{Step: "one", Definition: paramDef, Parameters: map[string]any{"name": 1, "target": "t", "image": map[string]any{"repo": "r"}}},
		{Step: "broken", Definition: eval.Definition{Name: "broken", Template: "parameter: {"}, Parameters: map[string]any{"x": 1}},
		{Step: "two", Definition: paramDef, Parameters: map[string]any{"name": "n", "target": "t", "image": map[string]any{"repo": 2}}},
	})
	var perr *eval.ParameterError
	if !errors.As(err, &perr) || len(perr.Problems) != 2 {
		t.Fatalf("err = %v, want 2 problems", err)
	}
	if perr.Problems[0].Step != "one" || perr.Problems[0].Path != "name" || perr.Problems[1].Step != "two" || perr.Problems[1].Path != "image.repo" {
		t.Errorf("problems = %+v", perr.Problems)
	}
}

// A default that refers to the step's context is decided by the context
// the check is given, also inside a disjunction of closed structs, as
// KubeVela's apply-app writes its parameter.
func TestValidateParametersWithContext(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	def := eval.Definition{Name: "apply-app", Template: `
parameter: close({
	data: {...}
}) | close({
	ref: {
		name:      string
		namespace: *context.namespace | string
		key:       *"application" | string
	}
})
`}
	ctx := map[string]any{"name": "run", "namespace": "ns", "stepName": "s"}
	if err := ev.ValidateParameters([]eval.ParameterCheck{{Step: "s", Definition: def, Context: ctx,
		Parameters: map[string]any{"ref": map[string]any{"name": "app"}}}}); err != nil {
		t.Errorf("ref with its namespace from the context: %v", err)
	}
	if err := ev.ValidateParameters([]eval.ParameterCheck{{Step: "s", Definition: def, Context: ctx,
		Parameters: map[string]any{"data": map[string]any{"x": 1}}}}); err != nil {
		t.Errorf("inline data: %v", err)
	}
	err := ev.ValidateParameters([]eval.ParameterCheck{{Step: "s", Definition: def, Context: ctx,
		Parameters: map[string]any{"ref": map[string]any{"namespace": "other"}}}})
	var perr *eval.ParameterError
	if !errors.As(err, &perr) || len(perr.Problems) != 1 || perr.Problems[0].Path != "ref.name" ||
		perr.Problems[0].Message != "required field missing: want string" {
		t.Errorf("ref without its name: %v, want ref.name missing", err)
	}
}

// Where CUE's encoder fails (a default from the context, a definition
// inside the parameter), the field is still documented: its type, whether
// it is required, its description.
func TestParameterSchemaWhereTheEncoderFails(t *testing.T) {
	ev := newEvaluator(t, 10*time.Second)
	s, err := ev.ParameterSchema(eval.Definition{Name: "read", Template: `
parameter: {
	// +usage=The object's name
	name: string
	// +usage=Its namespace; the run's by default
	namespace: *context.namespace | string
	message?: {
		#link: {url: string}
		link?: #link
		kind:  *"text" | "link"
	}
}
`})
	if err != nil {
		t.Fatal(err)
	}
	want := []defschema.Row{
		{Name: "name", Type: "string", Required: true, Description: "The object's name"},
		{Name: "namespace", Type: "string", Description: "Its namespace; the run's by default"},
		{Name: "message", Type: "object"},
		{Name: "message.link", Type: "object"},
		{Name: "message.link.url", Type: "string", Required: true},
		{Name: "message.kind", Type: `"text" \| "link"`, Default: `"text"`},
	}
	if d := cmp.Diff(want, defschema.Rows(s)); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
}
