package cli

import (
	"bytes"
	"errors"
	"io"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// stdinName names standard input in def vet's errors and positions.
const stdinName = "<stdin>"

// vetStdin reads the definitions def vet is given on standard input ("-"):
// YAML or JSON WorkflowStepDefinitions when the first document has a
// kind, else one CUE definition (vela def layout or a bare template).
func vetStdin(stdin io.Reader) ([]eval.Definition, error) {
	src, err := io.ReadAll(stdin)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, errors.New("-: standard input is empty: want a step definition (CUE, or YAML/JSON WorkflowStepDefinitions)")
	}
	var first map[string]any
	if utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(src), 4096).Decode(&first) == nil && first["kind"] != nil {
		objs, err := readDefinitions("-", bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return vetObjects(stdinName, objs)
	}
	def, err := eval.ParseDefinitionSource(stdinName, src)
	if err != nil {
		return nil, err
	}
	return []eval.Definition{def.Definition}, nil
}
