// Package definition says where definitions come from: files written by
// hand (CUE in `vela def` layout, or WorkflowStepDefinition YAML), the
// shipped set, and (in the controller) the cluster. Each source yields
// eval.Definition values: a name and a CUE template.
//
// A definition is of one Kind: a WorkflowStepDefinition (a step type,
// whose template one step attempt evaluates) or a ComponentDefinition (a
// component type, whose template renders a component's objects as output
// and outputs). Both kinds are handled by one mechanism: Kind.New and
// FromObject read either object, Cluster.ForKind finds either by name, and
// the controller's definition reconciler, parameterised by Kind, compiles
// either and reports the result as its Ready condition, and, for a
// template written for an older CUE that is loaded rewritten (list
// arithmetic, unused imports: eval.Rewrites), a Rewritten condition that
// lists each rewrite with its position. Both templates
// are compiled alike, with the implicit fields context and parameter that
// are filled only when the template is used (a step's properties and
// session; a component's properties and context.name, context.namespace,
// context.appName, ...).
//
// In the cluster, a definition named N for a run in namespace ns is the one
// in ns if there is one, else the one in the system namespace
// (DefaultSystemNamespace unless configured), for both kinds.
package definition

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// FromFile reads one step definition from a .cue file (`vela def` layout or
// a bare template) or a .yaml/.yml/.json WorkflowStepDefinition. A YAML
// stream with several documents yields its first WorkflowStepDefinition.
// A .cue source may also declare a component type (type: "component"):
// the result's Type says which it is.
func FromFile(path string) (eval.DefinitionSource, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return eval.DefinitionSource{}, err
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".cue":
		return eval.ParseDefinitionSource(path, src)
	case ".yaml", ".yml", ".json":
		return FromYAML(path, src)
	}
	return eval.DefinitionSource{}, fmt.Errorf("%s: want a .cue, .yaml or .json step definition", path)
}

// FromYAML reads the first WorkflowStepDefinition in a YAML or JSON stream.
func FromYAML(name string, src []byte) (eval.DefinitionSource, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(src), 4096)
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF {
				return eval.DefinitionSource{}, fmt.Errorf("%s: no WorkflowStepDefinition found", name)
			}
			return eval.DefinitionSource{}, fmt.Errorf("%s: %v", name, err)
		}
		if raw["kind"] != "WorkflowStepDefinition" {
			continue
		}
		b, err := yaml.Marshal(raw)
		if err != nil {
			return eval.DefinitionSource{}, err
		}
		var def v1beta1.WorkflowStepDefinition
		if err := yaml.UnmarshalStrict(b, &def); err != nil {
			return eval.DefinitionSource{}, fmt.Errorf("%s: %v", name, err)
		}
		return FromObject(&def)
	}
}
