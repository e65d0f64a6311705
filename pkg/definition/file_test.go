package definition_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/definition"
)

func TestEveryShippedDefinitionParses(t *testing.T) {
	files, _ := filepath.Glob("../../definitions/*.cue")
	if len(files) == 0 {
		t.Fatal("no shipped definitions")
	}
	for _, f := range files {
		src, err := definition.FromFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".cue"); src.Name != want || src.Type != "workflow-step" || src.Description == "" {
			t.Errorf("%s: name %q type %q description %q", f, src.Name, src.Type, src.Description)
		}
		// The manifest is the template body alone: no metadata, no
		// template field around it.
		if strings.Contains(src.Manifest, `type: "workflow-step"`) || strings.HasPrefix(strings.TrimSpace(src.Manifest), "template:") {
			t.Errorf("%s: template not extracted:\n%s", f, src.Manifest)
		}
		// The in-place template keeps the file's lines: each of its
		// non-empty lines is the file's line of the same number.
		if src.File != f {
			t.Errorf("%s: File %q", f, src.File)
		}
		b, _ := os.ReadFile(f)
		file := strings.Split(string(b), "\n")
		for i, l := range strings.Split(src.Template, "\n") {
			if strings.TrimSpace(l) != "" && (i >= len(file) || !strings.HasSuffix(file[i], strings.TrimLeft(l, " "))) {
				t.Errorf("%s: line %d of the in-place template is %q, of the file %q", f, i+1, l, file[min(i, len(file)-1)])
				break
			}
		}
	}
}

func TestFromYAML(t *testing.T) {
	src, err := definition.FromYAML("x.yaml", []byte(`
apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: hello
  annotations:
    definition.oam.dev/description: says hello
spec:
  schematic:
    cue:
      template: |
        import "vela/op"
        msg: op.#Message & {message: "hello"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if src.Name != "hello" || src.Description != "says hello" || !strings.Contains(src.Template, "op.#Message") {
		t.Errorf("got %+v", src)
	}
	if _, err := definition.FromYAML("x.yaml", []byte("kind: ConfigMap\n")); err == nil {
		t.Error("a stream without a definition must be an error")
	}
	if _, err := definition.FromYAML("x.yaml", []byte("apiVersion: core.oam.dev/v1beta1\nkind: WorkflowStepDefinition\nmetadata: {name: x}\nspec: {}\n")); err == nil {
		t.Error("a definition without a template must be an error")
	}
}
