// Command gendefs writes the manifests the Helm chart installs for the
// shipped definitions: each definitions/<name>.cue (`vela def` layout)
// becomes charts/stepflow/definitions/<name>.yaml, a WorkflowStepDefinition,
// and each definitions/components/<name>.cue (type: "component") becomes
// charts/stepflow/definitions/components/<name>.yaml, a ComponentDefinition;
// all without a namespace, which the chart sets at install time.
//
// The output depends only on the sources, so running it twice leaves the
// tree unchanged; a manifest whose source was removed is removed too.
//
//	go run ./hack/gendefs [-in definitions] [-out charts/stepflow/definitions]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// descriptionAnnotation is where KubeVela keeps a definition's description.
const descriptionAnnotation = "definition.oam.dev/description"

func main() {
	in := flag.String("in", "definitions", "directory of the .cue step definitions")
	out := flag.String("out", filepath.Join("charts", "stepflow", "definitions"), "directory to write the manifests into")
	flag.Parse()
	if err := generate(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gendefs:", err)
		os.Exit(1)
	}
}

// generate replaces the manifests in out with one per .cue file in in
// (step definitions), and those in out/components with one per .cue file in
// in/components (component definitions).
func generate(in, out string) error {
	if err := generateKind(in, out, definition.StepKind); err != nil {
		return err
	}
	return generateKind(filepath.Join(in, "components"), filepath.Join(out, "components"), definition.ComponentKind)
}

// generateKind replaces the manifests in out with one per .cue file in in,
// each a definition of kind. Steps must exist; component types may not.
func generateKind(in, out string, kind definition.Kind) error {
	sources, err := filepath.Glob(filepath.Join(in, "*.cue"))
	if err != nil {
		return err
	}
	if len(sources) == 0 && kind == definition.StepKind {
		return fmt.Errorf("no .cue definitions in %s", in)
	}
	files := map[string][]byte{}
	for _, path := range sources { // Glob sorts its matches.
		def, err := definition.FromFile(path)
		if err != nil {
			return err
		}
		if got := sourceKind(def); got != kind {
			return fmt.Errorf("%s: %q is a %s, want a %s here", path, def.Name, got, kind)
		}
		name := def.Name + ".yaml"
		if _, dup := files[name]; dup {
			return fmt.Errorf("%s: a second definition named %q", path, def.Name)
		}
		source := filepath.Base(path)
		if kind == definition.ComponentKind {
			source = "components/" + source
		}
		files[name], err = manifest(source, def)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	stale, err := filepath.Glob(filepath.Join(out, "*.yaml"))
	if err != nil {
		return err
	}
	for _, path := range stale {
		if _, keep := files[filepath.Base(path)]; !keep {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sourceKind is the kind of definition a `vela def` source declares: a
// component type for type: "component", else a step type.
func sourceKind(def eval.DefinitionSource) definition.Kind {
	if def.Type == "component" {
		return definition.ComponentKind
	}
	return definition.StepKind
}

// manifest renders one definition as a WorkflowStepDefinition or (type:
// "component") a ComponentDefinition in YAML, headed by a comment naming
// its source. The template is written as a literal block, so the manifest
// reads like the CUE it came from; YAML libraries quote any string holding
// a tab instead, and CUE indents with tabs.
func manifest(source string, def eval.DefinitionSource) ([]byte, error) {
	kind := sourceKind(def)
	want, err := kind.New()
	if err != nil {
		return nil, err
	}
	want.GetObjectKind().SetGroupVersionKind(v1beta1.GroupVersion.WithKind(string(kind)))
	want.SetName(def.Name)
	if def.Description != "" {
		want.SetAnnotations(map[string]string{descriptionAnnotation: def.Description})
	}
	schematic := &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: def.Manifest}}
	switch obj := want.(type) {
	case *v1beta1.WorkflowStepDefinition:
		obj.Spec.Schematic = schematic
		if c := def.Compensate; c != nil {
			obj.Spec.Compensate = &v1beta1.DefaultCompensation{Type: c.Type}
		}
	case *v1beta1.ComponentDefinition:
		obj.Spec.Schematic = schematic
	}

	// Through unstructured, to drop the fields a typed object always
	// carries but a manifest should not: a null creationTimestamp and an
	// empty status.
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return nil, err
	}
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "status")
	quoted, err := yaml.Marshal(u)
	if err != nil {
		return nil, err
	}
	delete(u, "spec")
	head, err := yaml.Marshal(u)
	if err != nil {
		return nil, err
	}
	body := append(head, "spec:\n"...)
	if c := def.Compensate; c != nil && kind == definition.StepKind {
		body = append(body, "  compensate:\n    type: "+strconv.Quote(c.Type)+"\n"...)
	}
	body = append(body, "  schematic:\n    cue:\n      template: "...)
	body = append(body, literal(def.Manifest, "        ")...)

	// Keep the literal block only if it reads back as the same object;
	// otherwise (a template starting with blanks, say) the quoted form.
	got, err := kind.New()
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(body, got); err != nil || !equality.Semantic.DeepEqual(got, want) {
		body = quoted
	}
	return append([]byte("# Generated by hack/gendefs from definitions/"+source+"; DO NOT EDIT.\n"), body...), nil
}

// literal writes s as a YAML literal block scalar whose lines are indented
// by indent, with the chomping indicator that keeps its trailing newlines.
func literal(s, indent string) string {
	content := strings.TrimRight(s, "\n")
	trailing := len(s) - len(content)
	var b strings.Builder
	switch trailing {
	case 0:
		b.WriteString("|-\n") // strip: no final newline
	case 1:
		b.WriteString("|\n") // clip: one final newline
	default:
		b.WriteString("|+\n") // keep: every final newline
	}
	for _, line := range strings.Split(content, "\n") {
		if line != "" {
			b.WriteString(indent + line)
		}
		b.WriteString("\n")
	}
	b.WriteString(strings.Repeat("\n", max(trailing-1, 0)))
	return b.String()
}
