package kubevela_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kubevela"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

// recorder answers the app, component and kube ops of a step with fixed
// results, runs builtin ops for real, and records each call as
// "provider.do path" with its params.
type recorder struct {
	healthy bool
	mu      sync.Mutex
	calls   []string
	params  map[string]any
}

func (r *recorder) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	r.mu.Lock()
	r.calls = append(r.calls, call.Name.String()+" "+call.Path)
	b, _ := json.Marshal(call.Params)
	var p any
	_ = json.Unmarshal(b, &p)
	r.params[call.Path] = p
	r.mu.Unlock()
	switch call.Name.Provider {
	case "builtin", "kubevela":
		return op.Direct.Run(ctx, call)
	}
	switch call.Name.String() {
	case "app.components":
		return op.Result{Returns: map[string]any{"appId": "shop", "components": []any{
			map[string]any{"type": "webservice", "name": "web", "version": "_", "revisionName": "webservice|web|_",
				"namespace": "prod", "clusters": []any{}, "properties": map[string]any{"image": "nginx"}},
			map[string]any{"type": "worker", "name": "db", "version": "_", "revisionName": "worker|db|_",
				"namespace": "prod", "clusters": []any{"east", "west"}, "properties": map[string]any{"image": "postgres"}},
		}}}, nil
	case "component.render":
		p := call.Params
		b, _ := json.Marshal(p)
		var m struct{ Name string }
		_ = json.Unmarshal(b, &m)
		return op.Result{Returns: map[string]any{"objects": []any{
			map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": m.Name}}}}}, nil
	case "kube.apply-in-order":
		b, _ := json.Marshal(call.Params)
		var m struct{ Value []map[string]any }
		_ = json.Unmarshal(b, &m)
		// As the API server returns them: with fields it sets.
		applied := []any{}
		for _, o := range m.Value {
			md, _ := o["metadata"].(map[string]any)
			md["uid"], md["resourceVersion"], md["generation"] = "u-1", "7", 1
			o["status"] = map[string]any{}
			applied = append(applied, o)
		}
		return op.Result{Returns: map[string]any{"value": applied}}, nil
	case "kube.health":
		if r.healthy {
			return op.Result{Returns: map[string]any{"healthy": true}}, nil
		}
		return op.Result{Returns: map[string]any{"healthy": false, "message": "ConfigMap web: not ready"}}, nil
	}
	return op.Result{}, op.Permanentf("unexpected op %s", call.Name)
}

func TestKubeVelaOps(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: opset.Catalog()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, template string
		healthy        bool
		want           eval.Phase
		wantReason     string
		wantMessage    []string
		wantCalls      []string
		// wantParams are params of calls, by path, as JSON.
		wantParams map[string]string
	}{{
		name: "load: the run's components by name",
		template: `
import "vela/op"
load: op.#Load
web: load.value.web.properties.image
`,
		want:      eval.Succeeded,
		wantCalls: []string{"app.components load.resolve"},
	}, {
		name: "load of another application",
		template: `
import "vela/op"
load: op.#Load & {app: "elsewhere"}
`,
		want: eval.Failed, wantMessage: []string{`op.#Load of application "elsewhere" needs KubeVela's Application controller`},
		wantCalls: []string{"builtin.fail load.otherApp"},
	}, {
		name: "apply a loaded component, waiting until healthy",
		template: `
import "vela/op"
load: op.#Load & {component: "web"}
apply: op.#ApplyComponent & {value: load.value.web}
`,
		want: eval.Waiting, wantMessage: []string{"ConfigMap web: not ready"},
		wantCalls: []string{"app.components load.resolve", "component.render apply.deploy.render", "kube.apply-in-order apply.deploy.apply.\"\"",
			"kube.health apply.deploy.health", "builtin.wait apply.deploy.wait"},
		wantParams: map[string]string{
			"apply.deploy.render":   `{"type": "webservice", "name": "web", "namespace": "prod", "properties": {"image": "nginx"}, "context": {"appId": "shop"}}`,
			`apply.deploy.apply.""`: `{"cluster": "", "value": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}}]}`,
		},
	}, {
		name: "apply a component to its topology's clusters in a namespace of its own",
		template: `
import "vela/op"
load: op.#Load & {component: "db"}
apply: op.#ApplyComponent & {value: load.value.db, namespace: "staging", waitHealthy: false}
`,
		want: eval.Succeeded,
		wantCalls: []string{"app.components load.resolve", "component.render apply.deploy.render",
			"kube.apply-in-order apply.deploy.apply.east", "kube.apply-in-order apply.deploy.apply.west"},
		wantParams: map[string]string{
			"apply.deploy.render": `{"type": "worker", "name": "db", "namespace": "staging", "properties": {"image": "postgres"}, "context": {"appId": "shop"}}`,
		},
	}, {
		name: "traits need KubeVela",
		template: `
import "vela/op"
apply: op.#ApplyComponent & {value: {type: "webservice", name: "web", traits: [{type: "scaler"}]}}
`,
		want: eval.Failed, wantMessage: []string{`op.#ApplyComponent: the traits of component "web" need KubeVela's trait definitions`},
		wantCalls: []string{"builtin.fail apply.check.fail"},
	}, {
		name: "apply the application, every component healthy",
		template: `
import "vela/op"
app: op.#ApplyApplication
`,
		healthy: true,
		want:    eval.Succeeded,
		wantCalls: []string{"app.components app.load.resolve",
			"component.render app.components.web.deploy.render", "kube.apply-in-order app.components.web.deploy.apply.\"\"",
			"kube.health app.components.web.deploy.health", "builtin.wait app.components.web.deploy.wait",
			"component.render app.components.db.deploy.render", "kube.apply-in-order app.components.db.deploy.apply.east",
			"kube.apply-in-order app.components.db.deploy.apply.west", "kube.health app.components.db.deploy.health", "builtin.wait app.components.db.deploy.wait"},
	}, {
		name: "apply the rest of the application",
		template: `
import "vela/op"
app: op.#ApplyRemaining & {exceptions: ["web"]}
`,
		healthy: true,
		want:    eval.Succeeded,
		wantCalls: []string{"app.components app.load.resolve", "component.render app.components.db.deploy.render",
			"kube.apply-in-order app.components.db.deploy.apply.east", "kube.apply-in-order app.components.db.deploy.apply.west",
			"kube.health app.components.db.deploy.health", "builtin.wait app.components.db.deploy.wait"},
	}, {
		name: "env bindings need KubeVela",
		template: `
import "vela/op"
env: op.#ApplyEnvBindApp & {env: "prod", app: "shop"}
`,
		want: eval.Failed, wantReason: "OpError",
		wantMessage: []string{"op.#ApplyEnvBindApp needs KubeVela's Application controller", "env bindings"},
		wantCalls:   []string{"kubevela.ApplyEnvBindApp env"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{healthy: c.healthy, params: map[string]any{}}
			out := ev.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "kubevela", Template: c.template},
				Step:       op.Step{RunName: "r", Namespace: "default", StepName: "s", StepID: "s-1"},
				Runner:     r,
			})
			if out.Phase != c.want {
				t.Fatalf("outcome %s (%s: %s), want %s; calls %q", out.Phase, out.Reason, out.Message, c.want, r.calls)
			}
			if c.wantReason != "" && out.Reason != c.wantReason {
				t.Errorf("reason %s, want %s", out.Reason, c.wantReason)
			}
			for _, m := range c.wantMessage {
				if !strings.Contains(out.Message, m) {
					t.Errorf("message %q, want it to contain %q", out.Message, m)
				}
			}
			if d := cmp.Diff(c.wantCalls, inOrder(r.calls)); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			for path, js := range c.wantParams {
				var want any
				if err := json.Unmarshal([]byte(js), &want); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, r.params[path]); d != "" {
					t.Errorf("params of %s (-want +got):\n%s", path, d)
				}
			}
		})
	}
}

// Every unsupported op has a vela/op schema that reaches it.
func TestEveryUnsupportedOpHasASchema(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: op.NewRegistry().Add(kubevela.New())})
	if err != nil {
		t.Fatal(err)
	}
	for _, do := range kubevela.Names() {
		out := ev.Evaluate(context.Background(), eval.Request{
			Definition: eval.Definition{Name: "x", Template: "import \"vela/op\"\nx: op.#" + do + "\n"},
			Step:       op.Step{RunName: "r", Namespace: "default", StepName: "s", StepID: "s-1"},
		})
		if out.Phase != eval.Failed || !strings.Contains(out.Message, "op.#"+do+" needs KubeVela's Application controller") {
			t.Errorf("op.#%s: %s (%s): %s", do, out.Phase, out.Reason, out.Message)
		}
	}
}

// inOrder sorts each run of adjacent applies of one component (to its
// clusters, made in parallel) by path.
func inOrder(calls []string) []string {
	out := append([]string(nil), calls...)
	const apply = "kube.apply-in-order "
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], apply) {
			j++
		}
		if j > i {
			sort.Strings(out[i:j])
			i = j
		} else {
			i++
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	var cases []optest.Case
	for _, do := range kubevela.Names() {
		cases = append(cases, optest.Case{Name: do, Do: do, Invalid: true, Params: func() any { return &map[string]any{} }})
	}
	optest.Run(t, optest.Suite{New: func() op.Family { return kubevela.New() }, Cases: cases})
}
