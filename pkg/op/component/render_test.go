package component_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// shipped reads the shipped component types from definitions/components.
func shipped(t testing.TB) component.Fixed {
	t.Helper()
	files, err := filepath.Glob("../../../definitions/components/*.cue")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped component definitions (%v)", err)
	}
	out := component.Fixed{}
	for _, f := range files {
		src, err := definition.FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if src.Type != "component" {
			t.Fatalf("%s: type %q, want component", f, src.Type)
		}
		out[src.Name] = src.Definition
	}
	return out
}

// newEvaluator is an in-process evaluator whose ops include the render op
// over types, rendering through the evaluator itself.
func newEvaluator(t testing.TB, types component.Fixed) *eval.Evaluator {
	t.Helper()
	late := &component.Deferred{}
	reg := op.NewRegistry().Add(builtin.New(), transform.New(), kube.New(kube.Local(nil)),
		component.New(component.Options{Types: types.Types(), Evaluator: late}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	late.Set(ev)
	return ev
}

// A step that renders its parameter, in either dialect.
var (
	renderStep = eval.Definition{Name: "render-step", Template: `
import "vela/component"
r: component.#Render & {$params: parameter}
`}
	renderFlatStep = eval.Definition{Name: "render-flat-step", Template: `
import "vela/op"
r: op.#RenderComponent & parameter
`}
)

// render evaluates a step that renders params and returns the objects, or
// the outcome when the step did not succeed.
func render(t testing.TB, ev *eval.Evaluator, def eval.Definition, params map[string]any) ([]any, eval.Outcome) {
	t.Helper()
	expr := "r.$returns.objects"
	if def.Name == renderFlatStep.Name {
		expr = "r.objects"
	}
	out := ev.Evaluate(context.Background(), eval.Request{
		Definition: def, Parameters: params,
		Step:    op.Step{Namespace: "team-a", StepName: "render", StepID: "run-1/render"},
		Outputs: []string{expr},
	})
	if out.Phase != eval.Succeeded {
		return nil, out
	}
	if err := out.Outputs[0].Err; err != nil {
		t.Fatalf("reading the objects: %v", err)
	}
	objs, ok := out.Outputs[0].Value.([]any)
	if !ok {
		t.Fatalf("objects are %T", out.Outputs[0].Value)
	}
	return objs, out
}

// plain is v through JSON, so that YAML expectations and rendered objects
// compare alike (numbers as float64).
func plain(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func fromYAML(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return plain(t, v)
}

// testTypes are small component types, each showing one rule.
var testTypes = component.Fixed{
	"ordered": {Name: "ordered", Template: `
output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "main"}
outputs: {
	b: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "b"}
	a: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "a"}
	c10: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "c10"}
	c9: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "c9"}
}
`},
	"outputs-only": {Name: "outputs-only", Template: `
outputs: x: {apiVersion: "v1", kind: "ConfigMap", metadata: name: context.name}
`},
	"nothing": {Name: "nothing", Template: `
parameter: {}
outputs: {}
`},
	"scoped": {Name: "scoped", Template: `
outputs: {
	a: {apiVersion: "v1", kind: "Namespace", metadata: name: "made"}
	b: {apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: name: "reader"}
	c: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: "own", namespace: "elsewhere"}}
	d: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "defaulted"}
	e: {apiVersion: "example.com/v1", kind: "Widget", metadata: {name: "w", labels: keep: "me"}}
}
`},
	"broken": {Name: "broken", Template: `
parameter: n: int
output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x", data: v: parameter.n + "s"}
`},
	"effect": {Name: "effect", Template: `
import "vela/kube"
apply: kube.#Apply & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "sneaky"}}
output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}
`},
	"pure": {Name: "pure", Template: `
import "vela/util"
s: util.#ConvertString & {$params: bt: 'hi'}
output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x", data: v: s.$returns.str}
`},
	"no-kind": {Name: "no-kind", Template: `
output: {apiVersion: "v1", metadata: name: "x"}
`},
	"context": {Name: "context", Template: `
output: {apiVersion: "v1", kind: "ConfigMap", metadata: name: context.name,
	data: {ns: context.namespace, app: context.appName, id: context.appId, p: "\(context.rollout.partition)"}}
`},
}

func TestRender(t *testing.T) {
	ev := newEvaluator(t, testTypes)
	names := func(objs []any) []string {
		var out []string
		for _, o := range objs {
			meta := o.(map[string]any)["metadata"].(map[string]any)
			ns, _ := meta["namespace"].(string)
			out = append(out, ns+"/"+meta["name"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		def    eval.Definition
		params map[string]any
		// want are the objects' namespace/name, in order; or wantErr are
		// the parts of the failed step's message.
		want    []string
		wantErr []string
		check   func(t *testing.T, objs []any)
	}{{
		name:   "output first, then outputs in key order",
		params: map[string]any{"type": "ordered", "name": "c", "properties": map[string]any{}},
		want:   []string{"team-a/main", "team-a/a", "team-a/b", "team-a/c10", "team-a/c9"},
	}, {
		name:   "flat dialect",
		def:    renderFlatStep,
		params: map[string]any{"type": "ordered", "name": "c", "properties": map[string]any{}},
		want:   []string{"team-a/main", "team-a/a", "team-a/b", "team-a/c10", "team-a/c9"},
	}, {
		name:   "outputs without output",
		params: map[string]any{"type": "outputs-only", "name": "solo", "properties": map[string]any{}},
		want:   []string{"team-a/solo"},
	}, {
		name:   "namespace given",
		params: map[string]any{"type": "outputs-only", "name": "solo", "namespace": "prod", "properties": map[string]any{}},
		want:   []string{"prod/solo"},
	}, {
		name:   "namespace defaulted on namespaced kinds only",
		params: map[string]any{"type": "scoped", "name": "s", "properties": map[string]any{}},
		want:   []string{"/made", "/reader", "elsewhere/own", "team-a/defaulted", "team-a/w"},
		check: func(t *testing.T, objs []any) {
			labels := objs[4].(map[string]any)["metadata"].(map[string]any)["labels"]
			if diff := cmp.Diff(map[string]any{"keep": "me", component.LabelComponent: "s"}, labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		},
	}, {
		name: "context: name, namespace, appName from appId, given fields; app id label hashed when invalid",
		params: map[string]any{"type": "context", "name": "ctx", "properties": map[string]any{},
			"context": map[string]any{"appId": "my app/1", "rollout": map[string]any{"partition": 2, "name": "p"}}},
		want: []string{"team-a/ctx"},
		check: func(t *testing.T, objs []any) {
			obj := objs[0].(map[string]any)
			want := map[string]any{"ns": "team-a", "app": "my app/1", "id": "my app/1", "p": "2"}
			if diff := cmp.Diff(want, obj["data"]); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			labels := obj["metadata"].(map[string]any)["labels"].(map[string]any)
			if got := labels["stepflow.dev/app-id"].(string); !strings.HasPrefix(got, "sha256-") {
				t.Errorf("app id label %q, want the hash of an invalid label value", got)
			}
		},
	}, {
		name:   "pure ops run inside a render",
		params: map[string]any{"type": "pure", "name": "p", "properties": map[string]any{}},
		want:   []string{"team-a/x"},
	}, {
		name:    "unknown type",
		params:  map[string]any{"type": "NO_SUCH_TYPE", "name": "web", "properties": map[string]any{}},
		wantErr: []string{`component "web" (type "NO_SUCH_TYPE")`, "unknown component type", `ComponentDefinition "no-such-type"`},
	}, {
		name:    "failing template: component, type and CUE position",
		params:  map[string]any{"type": "broken", "name": "web", "properties": map[string]any{"n": 1}},
		wantErr: []string{`component "web" (type "broken")`, `definition "broken"`, "broken.cue:3:"},
	}, {
		name:    "an effect op is refused",
		params:  map[string]any{"type": "effect", "name": "web", "properties": map[string]any{}},
		wantErr: []string{"kube.apply", `rendering component "web"`, "only pure ops and helm.render"},
	}, {
		name:    "no objects",
		params:  map[string]any{"type": "nothing", "name": "web", "properties": map[string]any{}},
		wantErr: []string{`component "web" (type "nothing")`, "renders no objects"},
	}, {
		name:    "object without kind",
		params:  map[string]any{"type": "no-kind", "name": "web", "properties": map[string]any{}},
		wantErr: []string{"has no kind"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			def := tc.def
			if def.Name == "" {
				def = renderStep
			}
			objs, out := render(t, ev, def, tc.params)
			if tc.wantErr != nil {
				if out.Phase != eval.Failed {
					t.Fatalf("phase %s (%s), want failed", out.Phase, out.Message)
				}
				t.Log(out.Message)
				for _, part := range tc.wantErr {
					if !strings.Contains(out.Message, part) {
						t.Errorf("message %q does not contain %q", out.Message, part)
					}
				}
				return
			}
			if out.Phase != eval.Succeeded {
				t.Fatalf("phase %s: %s", out.Phase, out.Message)
			}
			if diff := cmp.Diff(tc.want, names(objs)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			for _, o := range objs {
				labels := o.(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)
				if labels[component.LabelComponent] != tc.params["name"] {
					t.Errorf("labels %v lack %s: %v", labels, component.LabelComponent, tc.params["name"])
				}
			}
			if tc.check != nil {
				tc.check(t, objs)
			}
		})
	}
}

// A lookup that fails for another reason than a missing definition (the
// API server) is retryable; only a missing one is permanent.
func TestRenderLookupErrorIsRetryable(t *testing.T) {
	late := &component.Deferred{}
	types := func(context.Context, string) component.Definitions { return failing{} }
	reg := op.NewRegistry().Add(component.New(component.Options{Types: types, Evaluator: late}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	late.Set(ev)
	_, out := render(t, ev, renderStep, map[string]any{"type": "x", "name": "web", "properties": map[string]any{}})
	if out.Phase != eval.Broken || !strings.Contains(out.Message, "the API server is away") {
		t.Fatalf("phase %s (%s), want broken naming the cause", out.Phase, out.Message)
	}
}

type failing struct{}

func (failing) Lookup(string) (eval.Definition, error) {
	return eval.Definition{}, errAway
}

var errAway = &awayError{}

type awayError struct{}

func (*awayError) Error() string { return "the API server is away" }

// Until the evaluator is set, a render is retryable, not a failure.
func TestDeferredUnsetIsRetryable(t *testing.T) {
	reg := op.NewRegistry().Add(component.New(component.Options{Types: testTypes.Types(), Evaluator: &component.Deferred{}}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	_, out := render(t, ev, renderStep, map[string]any{"type": "ordered", "name": "web", "properties": map[string]any{}})
	if out.Phase != eval.Broken || !strings.Contains(out.Message, "no evaluator") {
		t.Fatalf("phase %s (%s), want broken", out.Phase, out.Message)
	}
}

func TestDefinitionName(t *testing.T) {
	for in, want := range map[string]string{
		"K8S_MICROSERVICE": "k8s-microservice",
		"K8S_OBJECTS":      "k8s-objects",
		"HELM":             "helm",
		"webservice":       "webservice",
		"my-type":          "my-type",
	} {
		if got := component.DefinitionName(in); got != want {
			t.Errorf("DefinitionName(%q) = %q, want %q", in, got, want)
		}
	}
}
