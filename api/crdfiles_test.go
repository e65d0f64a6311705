package api_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// crdDir is where hack/generate.sh writes the CRDs the chart installs.
var crdDir = filepath.Join("..", "charts", "stepflow", "crds")

// TestCRDFiles checks that every generated CRD is present, parses, and
// carries the names, versions and subresources KubeVela's CRDs have.
func TestCRDFiles(t *testing.T) {
	tests := []struct {
		file       string
		kind       string
		version    string
		shortNames []string
		status     bool
		columns    []string
	}{
		{"core.oam.dev_workflowruns.yaml", "WorkflowRun", "v1alpha1", []string{"wr"}, true, []string{"PHASE", "AGE", "STEPS", "DURATION", "MESSAGE"}},
		{"core.oam.dev_workflows.yaml", "Workflow", "v1alpha1", []string{"wfl"}, false, nil},
		{"core.oam.dev_workflowstepdefinitions.yaml", "WorkflowStepDefinition", "v1beta1", []string{"workflowstep"}, true, []string{"READY", "DESCRIPTION", "AGE"}},
		{"core.oam.dev_workflowschedules.yaml", "WorkflowSchedule", "v1alpha1", []string{"wfs"}, true, []string{"SCHEDULE", "WORKFLOW", "SUSPEND", "LAST SCHEDULE", "AGE"}},
		{"core.oam.dev_componentdefinitions.yaml", "ComponentDefinition", "v1beta1", []string{"comp"}, true, []string{"WORKLOAD-KIND", "DESCRIPTION"}},
	}

	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%s holds %d CRD files, want %d: %v", crdDir, len(files), len(tests), files)
	}

	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(crdDir, tt.file))
			if err != nil {
				t.Fatalf("%v (run hack/generate.sh)", err)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(data, &crd); err != nil {
				t.Fatalf("parse: %v", err)
			}

			if crd.Spec.Group != "core.oam.dev" || crd.Spec.Names.Kind != tt.kind {
				t.Errorf("group/kind = %s/%s, want core.oam.dev/%s", crd.Spec.Group, crd.Spec.Names.Kind, tt.kind)
			}
			if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
				t.Errorf("scope = %s, want Namespaced", crd.Spec.Scope)
			}
			if !slices.Equal(crd.Spec.Names.ShortNames, tt.shortNames) {
				t.Errorf("shortNames = %v, want %v", crd.Spec.Names.ShortNames, tt.shortNames)
			}
			if !slices.Equal(crd.Spec.Names.Categories, []string{"oam"}) {
				t.Errorf("categories = %v, want [oam]", crd.Spec.Names.Categories)
			}
			if len(crd.Spec.Versions) != 1 {
				t.Fatalf("got %d versions, want 1", len(crd.Spec.Versions))
			}
			v := crd.Spec.Versions[0]
			if v.Name != tt.version || !v.Served || !v.Storage {
				t.Errorf("version %s served=%v storage=%v, want %s served and stored", v.Name, v.Served, v.Storage, tt.version)
			}
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				t.Fatal("no schema")
			}
			if got := v.Subresources != nil && v.Subresources.Status != nil; got != tt.status {
				t.Errorf("status subresource = %v, want %v", got, tt.status)
			}
			var columns []string
			for _, c := range v.AdditionalPrinterColumns {
				columns = append(columns, c.Name)
			}
			if !slices.Equal(columns, tt.columns) {
				t.Errorf("printer columns = %v, want %v", columns, tt.columns)
			}
		})
	}
}
