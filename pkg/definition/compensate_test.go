package definition_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// A definition's default compensation (spec.compensate) is read from its
// vela def source (compensate: type: ...), from the manifest gendefs
// writes for the chart, and from a WorkflowStepDefinition with properties.
func TestDefaultCompensation(t *testing.T) {
	withProps := []byte(`apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata: {name: create-bucket}
spec:
  compensate:
    type: delete-bucket
    properties: {force: true}
  schematic: {cue: {template: "parameter: {}"}}
`)
	badProps := []byte(`apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata: {name: create-bucket}
spec:
  compensate: {type: delete-bucket, properties: [1]}
  schematic: {cue: {template: "parameter: {}"}}
`)
	for _, tc := range []struct {
		name string
		read func() (eval.DefinitionSource, error)
		want *eval.Compensation
	}{
		{"shipped source", func() (eval.DefinitionSource, error) {
			return definition.FromFile(filepath.Join("..", "..", "definitions", "apply-object.cue"))
		}, &eval.Compensation{Type: "delete-object"}},
		{"chart manifest", func() (eval.DefinitionSource, error) {
			return definition.FromFile(filepath.Join("..", "..", "charts", "stepflow", "definitions", "apply-object.yaml"))
		}, &eval.Compensation{Type: "delete-object"}},
		{"none declared", func() (eval.DefinitionSource, error) {
			return definition.FromFile(filepath.Join("..", "..", "definitions", "read-object.cue"))
		}, nil},
		{"with properties", func() (eval.DefinitionSource, error) {
			return definition.FromYAML("create-bucket.yaml", withProps)
		}, &eval.Compensation{Type: "delete-bucket", Properties: map[string]any{"force": true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := tc.read()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, src.Compensate); diff != "" {
				t.Errorf("compensate (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := definition.FromYAML("create-bucket.yaml", badProps); err == nil {
		t.Error("properties that are not an object: no error")
	}
}
