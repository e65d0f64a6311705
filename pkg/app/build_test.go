package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func grayRelease(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/gray-release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// doc builds a small configuration around a spec given as YAML.
func doc(annotations, spec string) []byte {
	return []byte("apiVersion: core.oam.dev/v1alpha2\nkind: ApplicationConfiguration\nmetadata:\n  name: a\n" + annotations + "spec:\n" + spec)
}

func TestBuildGrayRelease(t *testing.T) {
	src := grayRelease(t)
	l, err := Build(Request{Configuration: src, Category: "DEPLOY", Namespace: "ns", Creator: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	run := l.Run
	var names []string
	for _, s := range run.Spec.WorkflowSpec.Steps {
		names = append(names, s.Name+":"+s.Type)
	}
	want := []string{"apply-components-1:apply-components", "apply-components-2:apply-components", "suspend-3:suspend",
		"rollout-promotion-4:rollout-promotion", "apply-components-5:apply-components"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("steps (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{LabelAppID: "testapp", LabelCategory: "DEPLOY", LabelScope: "abm-daily"}, run.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if got := run.Annotations[AnnotationCreator]; got != "alice" {
		t.Errorf("creator annotation %q, want alice", got)
	}
	if got := run.Annotations[AnnotationConfiguration]; got != string(src) {
		t.Errorf("configuration annotation is not the document byte for byte:\n%s", got)
	}
	if l.ConfigMap != nil {
		t.Errorf("a small configuration got a ConfigMap")
	}
	if run.GenerateName != "testapp-deploy-" || run.Name != "" {
		t.Errorf("name %q, generateName %q; want generateName testapp-deploy-", run.Name, run.GenerateName)
	}
	props := string(run.Spec.WorkflowSpec.Steps[1].Properties.Raw)
	if !strings.Contains(props, `"partition":"1"`) {
		t.Errorf("step properties lost the partition: %s", props)
	}
}

func TestBuildNamingLabelsAndContext(t *testing.T) {
	long := strings.Repeat("x", 64)
	cases := []struct {
		name      string
		req       Request
		wantSteps []string
		wantLabel map[string]string
		wantRaw   map[string]string // annotations expected among the run's
		wantCtx   string
		wantProps []string // the steps' properties, when given
	}{{
		name:      "empty workflow gets one deploy step; scope is the run namespace",
		req:       Request{Configuration: doc("", "  components: [{revisionName: 'A|b|_'}]\n"), AppID: "shop", Category: "DEPLOY", Namespace: "team"},
		wantSteps: []string{"deploy:deploy"},
		wantLabel: map[string]string{LabelAppID: "shop", LabelCategory: "DEPLOY", LabelScope: "team"},
	}, {
		name: "named steps keep their names, unnamed ones count from 1",
		req: Request{Configuration: doc("", "  workflow:\n    steps:\n    - {type: suspend, name: wait}\n    - {type: deploy}\n"),
			AppID: "shop", Category: "ROLLBACK", Namespace: "team"},
		wantSteps: []string{"wait:suspend", "deploy-2:deploy"},
		wantLabel: map[string]string{LabelAppID: "shop", LabelCategory: "ROLLBACK", LabelScope: "team"},
	}, {
		name: "an app id that is no label value is hashed, raw in the annotation",
		req:  Request{Configuration: doc("", ""), AppID: "team/shop app", Category: "DEPLOY", Namespace: "team"},
		wantLabel: map[string]string{LabelAppID: "sha256-" + sha("team/shop app")[:48], LabelCategory: "DEPLOY",
			LabelScope: "team"},
		wantRaw:   map[string]string{AnnotationRawAppID: "team/shop app"},
		wantSteps: []string{"deploy:deploy"},
	}, {
		name:      "a 64-character app id is hashed too",
		req:       Request{Configuration: doc("", ""), AppID: long, Category: "DEPLOY", Namespace: "team"},
		wantLabel: map[string]string{LabelAppID: "sha256-" + sha(long)[:48], LabelCategory: "DEPLOY", LabelScope: "team"},
		wantRaw:   map[string]string{AnnotationRawAppID: long},
		wantSteps: []string{"deploy:deploy"},
	}, {
		name:      "app id from the appId annotation",
		req:       Request{Configuration: doc("  annotations: {appId: fromdoc}\n", ""), Category: "DEPLOY", Namespace: "team"},
		wantLabel: map[string]string{LabelAppID: "fromdoc", LabelCategory: "DEPLOY", LabelScope: "team"},
		wantSteps: []string{"deploy:deploy"},
	}, {
		name: "topology with clusters: namespace then sorted clusters",
		req: Request{Configuration: doc("", "  policies:\n  - {name: t, type: topology, properties: {namespace: prod, clusters: [us-2, eu-1]}}\n"),
			AppID: "shop", Category: "DEPLOY", Namespace: "team"},
		wantLabel: map[string]string{LabelAppID: "shop", LabelCategory: "DEPLOY", LabelScope: "prod.eu-1.us-2"},
		wantRaw:   map[string]string{AnnotationRawScope: "prod.eu-1.us-2"},
		wantSteps: []string{"deploy:deploy"},
	}, {
		name: "scope from a component's Namespace scope, through a context override",
		req: Request{Configuration: doc("", "  parameterValues: [{name: ns, value: daily}]\n  components:\n  - revisionName: A|b|_\n    scopes: [{scopeRef: {kind: Namespace, name: '{{Global.ns}}'}}]\n"),
			AppID: "shop", Category: "DEPLOY", Namespace: "team", Context: map[string]any{"ns": "staging"}},
		wantLabel: map[string]string{LabelAppID: "shop", LabelCategory: "DEPLOY", LabelScope: "staging"},
		wantSteps: []string{"deploy:deploy"},
		wantCtx:   `{"ns":"staging"}`,
	}, {
		name: "step properties are resolved with the launch's globals",
		req: Request{Configuration: doc("", "  parameterValues: [{name: count, value: 2}]\n  workflow: {steps: [{type: scale, properties: {replicas: '{{ Global.count }}', ns: '{{ Global.ns }}'}}]}\n"),
			AppID: "shop", Category: "DEPLOY", Namespace: "team", Context: map[string]any{"ns": "prod"}},
		wantLabel: map[string]string{LabelAppID: "shop", LabelCategory: "DEPLOY", LabelScope: "team"},
		wantSteps: []string{"scale-1:scale"},
		wantProps: []string{`{"ns":"prod","replicas":2}`},
		wantCtx:   `{"ns":"prod"}`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Build(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, s := range l.Run.Spec.WorkflowSpec.Steps {
				steps = append(steps, s.Name+":"+s.Type)
			}
			if d := cmp.Diff(tc.wantSteps, steps); d != "" {
				t.Errorf("steps (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantLabel, l.Run.Labels); d != "" {
				t.Errorf("labels (-want +got):\n%s", d)
			}
			for k, v := range l.Run.Labels {
				if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
					t.Errorf("label %s=%q is not a valid label value: %v", k, v, errs)
				}
			}
			for k, v := range tc.wantRaw {
				if got := l.Run.Annotations[k]; got != v {
					t.Errorf("annotation %s = %q, want %q", k, got, v)
				}
			}
			if tc.wantProps != nil {
				var props []string
				for _, s := range l.Run.Spec.WorkflowSpec.Steps {
					props = append(props, string(s.Properties.Raw))
				}
				if d := cmp.Diff(tc.wantProps, props); d != "" {
					t.Errorf("step properties (-want +got):\n%s", d)
				}
			}
			var ctx string
			if l.Run.Spec.Context != nil {
				ctx = string(l.Run.Spec.Context.Raw)
			}
			if ctx != tc.wantCtx {
				t.Errorf("context %s, want %s", ctx, tc.wantCtx)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	ok := "  components: [{revisionName: 'A|b|_'}]\n"
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"malformed revisionName", req(doc("", "  components: [{revisionName: 'A|b'}]\n")), `spec.components[0]: revisionName "A|b": want TYPE|NAME|VERSION`},
		{"empty NAME", req(doc("", "  components: [{revisionName: 'A||_'}]\n")), `revisionName "A||_": NAME is empty`},
		{"space in TYPE", req(doc("", "  components: [{revisionName: 'A B|c|_'}]\n")), `TYPE "A B" contains white space`},
		{"duplicate component", req(doc("", "  components: [{revisionName: 'A|b|_'}, {revisionName: 'A|b|v2'}]\n")), `spec.components[1]: component A|b is also spec.components[0]`},
		{"bad override revision", req(doc("", "  policies: [{name: o, type: override, properties: {components: [{revisionName: x}]}}]\n")), `spec.policies[0] (o): properties.components[0]: revisionName "x"`},
		{"unknown policy type", req(doc("", "  policies: [{name: g, type: garbage}]\n")), `policy "g" has type "garbage"`},
		{"misspelt topology field", req(doc("", "  policies: [{name: t, type: topology, properties: {namespaces: x}}]\n")), `policy "t" (topology): properties: json: unknown field "namespaces"`},
		{"unknown global", req(doc("", "  components: [{revisionName: 'A|b|_', parameterValues: [{name: v, value: '{{ Global.nope }}'}]}]\n")), `spec.components[0].parameterValues[0].value: {{ Global.nope }} has no value: set "nope"`},
		{"unknown global inside text", req(doc("", "  workflow: {steps: [{type: deploy, properties: {x: 'a-{{Global.y}}'}}]}\n")), `spec.workflow.steps[0].properties.x: {{ Global.y }} has no value`},
		{"step without type", req(doc("", "  workflow: {steps: [{name: s}]}\n")), `spec.workflow.steps[0] ("s") has no type`},
		{"duplicate step name", req(doc("", "  workflow: {steps: [{type: deploy, name: deploy-2}, {type: deploy}]}\n")), `spec.workflow.steps[1]: step name "deploy-2" is also spec.workflow.steps[0]'s`},
		{"input without a source", req(doc("", "  workflow: {steps: [{type: deploy, name: d, inputs: [{from: image, parameterKey: image}]}]}\n")), `spec.workflow: step "d" takes input "image", which no step outputs`},
		{"dependsOn no step", req(doc("", "  workflow: {steps: [{type: deploy, name: d, dependsOn: [ghost]}]}\n")), `spec.workflow: step "d" depends on`},
		{"wrong kind", req([]byte("apiVersion: core.oam.dev/v1beta1\nkind: Application\n")), `apiVersion "core.oam.dev/v1beta1", kind "Application": want core.oam.dev/v1alpha2 ApplicationConfiguration`},
		{"no app id", Request{Configuration: doc("", ok), Category: "DEPLOY", Namespace: "n"}, `no app id: pass one or set metadata.annotations.appId`},
		{"app id disagrees", Request{Configuration: doc("  annotations: {appId: x}\n", ok), AppID: "y", Category: "DEPLOY", Namespace: "n"}, `app id "y" differs from its metadata.annotations.appId "x"`},
		{"no category", Request{Configuration: doc("", ok), AppID: "a", Namespace: "n"}, `no category`},
		{"bad category", Request{Configuration: doc("", ok), AppID: "a", Category: "DE PLOY", Namespace: "n"}, `category "DE PLOY"`},
		{"not YAML", req([]byte("a: [")), `application configuration: yaml: line 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func req(src []byte) Request {
	return Request{Configuration: src, AppID: "a", Category: "DEPLOY", Namespace: "n"}
}

func TestResolved(t *testing.T) {
	src := doc("", `  parameterValues:
  - {name: ns, value: daily}
  - {name: replicas, value: 3}
  - {name: image, value: {repository: nginx, tag: "1.2"}}
  components:
  - revisionName: A|b|_
    parameterValues:
    - name: v
      value:
        whole: "{{ Global.replicas }}"
        object: "{{Global.image}}"
        nested: "{{ Global.image.tag }}"
        text: "ns={{ Global.ns }} n={{ Global.replicas }} img={{ Global.image }}"
        other: "{{ env.HOME }}"
`)
	ac, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ac.Resolved(ac.Globals(map[string]any{"ns": "prod"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(r.Spec.Components[0].ParameterValues[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"nested":"1.2","object":{"repository":"nginx","tag":"1.2"},"other":"{{ env.HOME }}",` +
		`"text":"ns=prod n=3 img={\"repository\":\"nginx\",\"tag\":\"1.2\"}","whole":3}`
	if string(got) != want {
		t.Errorf("resolved value\n got %s\nwant %s", got, want)
	}
	if ac.Spec.Components[0].ParameterValues[0].Value.(map[string]any)["whole"] != "{{ Global.replicas }}" {
		t.Errorf("Resolved changed the configuration it was called on")
	}
	if _, err := ac.Resolved(ac.Globals(map[string]any{"ns": "x", "image": "flat"})); err == nil ||
		!strings.Contains(err.Error(), "{{ Global.image.tag }}: Global.image is not an object") {
		t.Errorf("error %v, want one saying Global.image is not an object", err)
	}
}

func TestParseRevision(t *testing.T) {
	r, err := ParseRevision("K8S_MICROSERVICE|clustermanage|_")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Revision{"K8S_MICROSERVICE", "clustermanage", "_"}); r != want || !r.IsLatest() || r.String() != "K8S_MICROSERVICE|clustermanage|_" {
		t.Errorf("got %+v", r)
	}
	for _, bad := range []string{"", "A", "A|b", "A|b|c|d", "|b|_", "A|b|", "A|b |_"} {
		if _, err := ParseRevision(bad); err == nil || !strings.Contains(err.Error(), `revisionName "`+bad+`"`) {
			t.Errorf("ParseRevision(%q) = %v, want an error naming it", bad, err)
		}
	}
}

func TestBuildLargeConfigurationGoesToConfigMap(t *testing.T) {
	src := bigDoc(InlineLimit + 1)
	l, err := Build(Request{Configuration: src, AppID: "a", Category: "DEPLOY", Namespace: "n", Name: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, inline := l.Run.Annotations[AnnotationConfiguration]; inline {
		t.Errorf("a %d-byte configuration was put in the run", len(src))
	}
	cm := l.ConfigMap
	if cm == nil {
		t.Fatal("no configmap for a large configuration")
	}
	if cm.Name != "r1-configuration" || cm.Immutable == nil || !*cm.Immutable || cm.Data[ConfigMapKey] != string(src) {
		t.Errorf("configmap %s (immutable %v, %d bytes): want immutable r1-configuration holding the %d-byte document",
			cm.Name, cm.Immutable, len(cm.Data[ConfigMapKey]), len(src))
	}
	if l.Run.Annotations[AnnotationConfigMap] != "r1-configuration" {
		t.Errorf("run does not name its configmap: %v", l.Run.Annotations)
	}
	long := strings.Repeat("r", 240)
	if _, err := Build(Request{Configuration: src, AppID: "a", Category: "DEPLOY", Namespace: "n", Name: long}); err == nil ||
		!strings.Contains(err.Error(), "leave room for its configuration ConfigMap's name") {
		t.Errorf("error %v for a run name too long for its ConfigMap's", err)
	}
	if _, err := Build(Request{Configuration: bigDoc(MaxConfigurationSize + 1), AppID: "a", Category: "DEPLOY", Namespace: "n"}); err == nil ||
		!strings.Contains(err.Error(), "at most 1047552 fit in a ConfigMap") {
		t.Errorf("error %v for an oversized configuration", err)
	}
}

// bigDoc is a valid configuration of at least n bytes.
func bigDoc(n int) []byte {
	base := doc("", "  parameterValues:\n  - name: padding\n    value: \"")
	pad := n - len(base) - 2
	if pad < 0 {
		pad = 0
	}
	return append(append(base, strings.Repeat("p", pad)...), "\"\n"...)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestBuildMode(t *testing.T) {
	twoSteps := doc("", "  workflow:\n    steps:\n    - {type: suspend, name: a}\n    - {type: deploy, name: b}\n")
	for _, tc := range []struct {
		mode string
		want *v1alpha1.WorkflowExecuteMode
		err  string
	}{
		{mode: "", want: nil},
		{mode: "STEP_BY_STEP", want: &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}},
		{mode: "StepByStep", want: &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep}},
		{mode: "DAG", want: &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeDAG}},
		{mode: "dag", err: `mode "dag": want STEP_BY_STEP or DAG`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			m, err := ParseMode(tc.mode)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseMode(%q) = %v, want error %q", tc.mode, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := req(twoSteps)
			r.Mode = m
			l, err := Build(r)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, l.Run.Spec.Mode); d != "" {
				t.Errorf("spec.mode (-want +got):\n%s", d)
			}
		})
	}
}
