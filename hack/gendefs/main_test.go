package main

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// Every template reads back unchanged, and those with tabs a literal block
// can hold are written as one (the fallback, quoting, is for the others).
func TestManifestKeepsTheTemplate(t *testing.T) {
	for name, tc := range map[string]struct {
		template string
		literal  bool
	}{
		"one final newline":   {"a: 1\nb: {\n\tc: 2\n}\n", true},
		"no final newline":    {"a:\t1", true},
		"two final newlines":  {"a:\t1\n\n", true},
		"blank lines inside":  {"a:\t1\n\n\nb: 2\n", true},
		"trailing blanks":     {"a:\t1   \n", true},
		"leading blanks":      {"  a: 1\n", false},
		"leading empty line":  {"\na: 1\n", false},
		"carriage returns":    {"a: 1\r\n", false},
		"quotes and escapes":  {"a:\t\"x\\(y)\" // #: '|'\n", true},
		"empty":               {"", false},
		"document end marker": {"a:\t1\n...\n", true},
	} {
		t.Run(name, func(t *testing.T) {
			def := eval.DefinitionSource{Definition: eval.Definition{Name: "x", Template: tc.template}, Description: "d: \"quoted\""}
			b, err := manifest("x.cue", def)
			if err != nil {
				t.Fatal(err)
			}
			var got v1beta1.WorkflowStepDefinition
			if err := yaml.UnmarshalStrict(b, &got); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if got.Spec.Schematic.CUE.Template != tc.template || got.Annotations[descriptionAnnotation] != def.Description || got.Name != "x" {
				t.Errorf("read back %+v\n%s", got, b)
			}
			if tc.literal && !strings.Contains(string(b), "template: |") {
				t.Errorf("not a literal block:\n%s", b)
			}
		})
	}
}
