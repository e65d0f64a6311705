package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
)

func newDefInitCmd(deps Deps) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "init NAME [--dir DIR]",
		Short: "Scaffold a step definition and a test case for it",
		Long: `Writes DIR/NAME.cue, a step definition in 'vela def' layout with a parameter
block, an op call and comments on what to change, and DIR/testdata/NAME/basic.txtar,
a test case for it with recorded op results, so that

  stepflow def test DIR
  stepflow def vet DIR/NAME.cue

pass right away. NAME must be a DNS-1123 label (lowercase letters, digits and
'-'), as it becomes the WorkflowStepDefinition's name. Existing files are never
overwritten: the command refuses and writes nothing.`,
		Example: `  stepflow def init notify-team --dir steps`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				return fmt.Errorf("definition name %q: %s", name, strings.Join(errs, "; "))
			}
			files := []struct{ path, content string }{
				{filepath.Join(dir, name+".cue"), scaffoldDefinition(name)},
				{filepath.Join(dir, "testdata", name, "basic.txtar"), scaffoldCase(name)},
			}
			for _, f := range files {
				if _, err := os.Stat(f.path); err == nil {
					return fmt.Errorf("%s exists: def init does not overwrite files (nothing written)", f.path)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			for _, f := range files {
				if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
					return err
				}
				// O_EXCL: a file that appeared since the check is not
				// overwritten either.
				out, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return err
				}
				_, werr := out.WriteString(f.content)
				if err := errors.Join(werr, out.Close()); err != nil {
					return fmt.Errorf("writing %s: %w", f.path, err)
				}
				fmt.Fprintf(deps.Stdout, "wrote %s\n", f.path)
			}
			fmt.Fprintf(deps.Stdout, "next: edit %s, then run: stepflow def test %s && stepflow def vet %s\n",
				files[0].path, dirArg(dir), files[0].path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write NAME.cue and testdata/NAME/ into")
	_ = cmd.MarkFlagDirname("dir")
	return cmd
}

func dirArg(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

func scaffoldDefinition(name string) string {
	return strings.ReplaceAll(`// A step definition in 'vela def' layout: the header names the step type
// and describes it; template is CUE evaluated for each step of this type.
// Try it without a cluster:
//   stepflow def render -f NAME.cue -p '{"name": "settings", "data": {"color": "blue"}}'
// Test it with the cases under testdata/NAME/: stepflow def test .
import (
	"vela/kube"
)

"NAME": {
	type: "workflow-step"
	annotations: {}
	labels: {}
	description: "Apply a ConfigMap holding the given data; its uid is in the uid field."
}
template: {
	// An op call: kube.#Apply applies $params.value with server-side apply
	// and fills $returns with the object as the API server has it. Other
	// op packages: vela/http (#HTTPDo, #HTTPPost), vela/builtin
	// (#ConditionalWait, #Suspend, #Fail), vela/kube (#Read, #Delete, ...).
	apply: kube.#Apply & {
		$params: value: {
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: {
				name: parameter.name
				// context holds the run's name, namespace, stepName and
				// stepSessionID, and the run's context variables.
				namespace: context.namespace
			}
			data: parameter.data
		}
	}

	// A field read from the op's result: concrete once the apply has run.
	// A step exports it with outputs: [{name: "uid", valueFrom: "uid"}].
	uid: apply.$returns.value.metadata.uid

	// The step's properties, checked against these types before any op
	// runs. "+usage" comments document each one.
	parameter: {
		// +usage=Name of the ConfigMap
		name: string
		// +usage=Data to store in it
		data: [string]: string
	}
}
`, "NAME", name)
}

func scaffoldCase(name string) string {
	return strings.ReplaceAll(`A test case of NAME, run by 'stepflow def test': the step's properties and
context, the recorded result of each op call by its path in the template
(nothing is run), the step's outputs, and what the evaluation must give.
See 'stepflow def test --help' for every field.
-- properties.json --
{"name": "settings", "data": {"color": "blue"}}
-- context.json --
{"name": "my-run", "namespace": "apps"}
-- ops.json --
{
  "apply": {"returns": {"value": {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "settings", "namespace": "apps", "uid": "6f1c2a7e-0d3b-4c1e-9a55-2b8f0c4d9e11"},
    "data": {"color": "blue"}
  }}}
}
-- outputs.json --
[{"name": "uid", "valueFrom": "uid"}]
-- want.json --
{
  "outcome": "succeeded",
  "calls": ["kube.apply apply"],
  "params": {"apply": {"cluster": "", "value": {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "settings", "namespace": "apps"},
    "data": {"color": "blue"}
  }}},
  "outputs": {"uid": "6f1c2a7e-0d3b-4c1e-9a55-2b8f0c4d9e11"}
}
`, "NAME", name)
}
