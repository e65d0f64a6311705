package eval

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A definition written with Format reads back, with ParseDefinitionSource,
// to the same name, type, description and template.
func TestDefinitionSourceFormatRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  DefinitionSource
	}{{
		name: "imports and a description",
		src: DefinitionSource{Definition: Definition{Name: "say"}, Type: "workflow-step", Description: `Say "hello"`,
			Manifest: "import \"vela/op\"\n\n// the message\nmsg: op.#Message & {message: parameter.who}\nparameter: who: string\n"},
	}, {
		name: "a component, no imports, no description",
		src:  DefinitionSource{Definition: Definition{Name: "raw-object"}, Type: "component", Manifest: "output: parameter.object\nparameter: object: {...}\n"},
	}, {
		name: "no type is a workflow step",
		src:  DefinitionSource{Definition: Definition{Name: "noop"}, Manifest: "x: 1\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.src.Format()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseDefinitionSource(tc.src.Name+".cue", b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			want := tc.src
			if want.Type == "" {
				want.Type = "workflow-step"
			}
			type fields struct{ Name, Type, Description, Manifest string }
			if diff := cmp.Diff(fields{want.Name, want.Type, want.Description, want.Manifest},
				fields{got.Name, got.Type, got.Description, got.Manifest}); diff != "" {
				t.Errorf("read back (-want +got):\n%s\nfile:\n%s", diff, b)
			}
		})
	}
}
