package appop

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/app"
)

// config parses an application configuration around a spec given as YAML.
func config(t *testing.T, spec string) *app.ApplicationConfiguration {
	t.Helper()
	src := "apiVersion: core.oam.dev/v1alpha2\nkind: ApplicationConfiguration\nmetadata:\n  name: t\n  annotations: {appId: testapp}\nspec:\n" + indent(spec)
	ac, err := app.Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return ac
}

func indent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func grayRelease(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../app/testdata/gray-release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    string
		sel     Selection
		want    []Component
		wantErr string
	}{{
		name: "parameter values at their paths, spec. removed, numbers stay numbers",
		spec: `
components:
- revisionName: "K8S_MICROSERVICE|web|1.0"
  parameterValues:
  - {name: image, value: "nginx:1", toFieldPaths: [spec.image]}
  - {name: replicas, value: 3, toFieldPaths: [spec.replicas]}
  - {name: ratio, value: 0.5, toFieldPaths: [spec.tuning.ratio, spec.copy.ratio]}
  - {name: values, value: {a: {b: 1}}, toFieldPaths: [spec.values]}
  - {name: plain, value: true}
  - {name: meta, value: x, toFieldPaths: [metadata.label]}
`,
		sel: Selection{Namespace: "runs"},
		want: []Component{{
			Type: "K8S_MICROSERVICE", Name: "web", Version: "1.0", RevisionName: "K8S_MICROSERVICE|web|1.0",
			Namespace: "runs", Clusters: []string{},
			Properties: map[string]any{
				"image": "nginx:1", "replicas": int64(3),
				"tuning": map[string]any{"ratio": 0.5}, "copy": map[string]any{"ratio": 0.5},
				"values": map[string]any{"a": map[string]any{"b": int64(1)}},
				"plain":  true, "metadata": map[string]any{"label": "x"},
			},
		}},
	}, {
		name: "globals resolve from parameterValues with the context over them; data inputs",
		spec: `
parameterValues:
- {name: ns, value: prod}
- {name: clusterId, value: c-1}
- {name: size, value: 2}
components:
- revisionName: "K8S_MICROSERVICE|web|_"
  scopes: [{scopeRef: {kind: Namespace, name: "{{ Global.ns }}"}}]
  dataInputs:
  - {valueFrom: {dataOutputName: Global.clusterId}, toFieldPaths: [spec.name]}
  - {valueFrom: {dataOutputName: Global.size}, toFieldPaths: [spec.size]}
  - {valueFrom: {dataOutputName: build}, toFieldPaths: [spec.build.id]}
  parameterValues:
  - {name: values, value: {deployNamespace: "{{ Global.ns }}", replicas: "{{ Global.size }}"}, toFieldPaths: [spec.values]}
`,
		sel: Selection{Namespace: "runs", Context: map[string]any{"clusterId": "c-2", "build": int64(42)}},
		want: []Component{{
			Type: "K8S_MICROSERVICE", Name: "web", Version: "_", RevisionName: "K8S_MICROSERVICE|web|_",
			Namespace: "prod", Clusters: []string{},
			Properties: map[string]any{
				"values": map[string]any{"deployNamespace": "prod", "replicas": int64(2)},
				"name":   "c-2", "size": int64(2), "build": map[string]any{"id": int64(42)},
			},
		}},
	}, {
		name: "selection keeps the configuration's order; override replaces and adds; topology places",
		spec: `
components:
- revisionName: "A|one|_"
  parameterValues: [{name: image, value: one:1, toFieldPaths: [spec.image]}]
- revisionName: "A|two|_"
  parameterValues:
  - {name: image, value: two:1, toFieldPaths: [spec.image]}
  - {name: replicas, value: 1, toFieldPaths: [spec.replicas]}
- revisionName: "A|three|_"
policies:
- name: place
  type: topology
  properties: {namespace: edge-ns, clusters: [edge, eu]}
- name: bump
  type: override
  properties:
    components:
    - revisionName: "A|two|9"
      parameterValues:
      - {name: image, value: two:2, toFieldPaths: [spec.image]}
      - {name: env, value: [{name: X, value: "1"}], toFieldPaths: [spec.env]}
`,
		sel: Selection{Namespace: "runs", Components: []Selector{{"A", "two"}, {"A", "one"}}, Policies: []string{"place", "bump"}},
		want: []Component{{
			Type: "A", Name: "one", Version: "_", RevisionName: "A|one|_", Namespace: "edge-ns", Clusters: []string{"edge", "eu"},
			Properties: map[string]any{"image": "one:1"},
		}, {
			Type: "A", Name: "two", Version: "_", RevisionName: "A|two|_", Namespace: "edge-ns", Clusters: []string{"edge", "eu"},
			Properties: map[string]any{"image": "two:2", "replicas": int64(1), "env": []any{map[string]any{"name": "X", "value": "1"}}},
		}},
	}, {
		name: "a Namespace scope wins over a topology policy's namespace",
		spec: `
components:
- revisionName: "A|one|_"
  scopes: [{scopeRef: {kind: Namespace, name: own}}]
policies:
- {name: place, type: topology, properties: {namespace: elsewhere}}
`,
		sel: Selection{Namespace: "runs", Policies: []string{"place"}},
		want: []Component{{
			Type: "A", Name: "one", Version: "_", RevisionName: "A|one|_", Namespace: "own", Clusters: []string{},
			Properties: map[string]any{},
		}},
	}, {
		name:    "a component not in the configuration",
		spec:    "components: [{revisionName: \"A|one|_\"}]",
		sel:     Selection{Components: []Selector{{"A", "two"}}},
		wantErr: "component A|two is not in the application configuration",
	}, {
		name:    "an unknown policy",
		spec:    "components: [{revisionName: \"A|one|_\"}]",
		sel:     Selection{Policies: []string{"nope"}},
		wantErr: `policy "nope" is not in the application configuration's spec.policies`,
	}, {
		name: "a data input without a value names the component and the name",
		spec: `
components:
- revisionName: "A|one|_"
  dataInputs: [{valueFrom: {dataOutputName: Global.clusterId}, toFieldPaths: [spec.name]}]
`,
		wantErr: `component A|one: dataInputs[0]: data output "Global.clusterId" has no value`,
	}, {
		name: "a context data input without a value",
		spec: `
components:
- revisionName: "A|one|_"
  dataInputs: [{valueFrom: {dataOutputName: build}, toFieldPaths: [spec.name]}]
`,
		wantErr: `component A|one: dataInputs[0]: data output "build" has no value: set "build" in the run context`,
	}, {
		name: "a placeholder without a value",
		spec: `
components:
- revisionName: "A|one|_"
  parameterValues: [{name: image, value: "{{ Global.image }}", toFieldPaths: [spec.image]}]
`,
		wantErr: "{{ Global.image }} has no value",
	}, {
		name: "a path through a value that is not an object",
		spec: `
components:
- revisionName: "A|one|_"
  parameterValues:
  - {name: image, value: x, toFieldPaths: [spec.image]}
  - {name: tag, value: y, toFieldPaths: [spec.image.tag]}
`,
		wantErr: `component A|one: parameterValues "tag": toFieldPath "spec.image.tag": image is already set to a string`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(config(t, tc.spec), tc.sel)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("components (-want +got):\n%s", d)
			}
		})
	}
}

// The gray-release example of the reference: clustermanage, with both
// policies, as its second step deploys it.
func TestSelectGrayRelease(t *testing.T) {
	ac, err := app.Parse(grayRelease(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Select(ac, Selection{
		Components: []Selector{{"K8S_MICROSERVICE", "clustermanage"}},
		Policies:   []string{"topology-e2e-env", "override-e2e-env"},
		Context:    map[string]any{"clusterId": "master"},
		Namespace:  "runs",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Component{{
		Type: "K8S_MICROSERVICE", Name: "clustermanage", Version: "_", RevisionName: "K8S_MICROSERVICE|clustermanage|_",
		Namespace: "abm-daily", Clusters: []string{},
		Properties: map[string]any{
			"name": "master",
			"values": map[string]any{
				"image":        map[string]any{"repository": "nginx", "tag": "latest"},
				"replicaCount": int64(3),
			},
		},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("components (-want +got):\n%s", d)
	}
}
