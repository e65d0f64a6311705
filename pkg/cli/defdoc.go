package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

func newDefDocCmd(deps Deps, g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "doc -f FILE [-o markdown|json]",
		Short: "Print the parameter reference of a step definition: a Markdown table or its JSON Schema",
		Long: `Compiles the step definition in FILE (.cue in 'vela def' layout or a bare
template; a WorkflowStepDefinition in .yaml, .yml or .json) without a cluster
and prints the reference of its CUE parameter:

  -o markdown (the default)  a table with each field's name, type, whether it
                             is required, its default and its description;
                             nested fields as dotted names, the elements of a
                             list as name[].field
  -o json                    the JSON Schema (draft 2020-12) the controller
                             also keeps in the definition's
                             status.parameterSchema

Descriptions come from each field's "// +usage=" comment, as KubeVela's
definitions write them, else from its plain comment. A required field is one
with neither a default nor a "?".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format := g.output
			switch format {
			case "", "md":
				format = "markdown"
			case "markdown", "json":
			default:
				return fmt.Errorf("def doc: -o %q: want markdown or json", g.output)
			}
			src, err := definition.FromFile(file)
			if err != nil {
				return err
			}
			reg, err := deps.Ops(g.restConfig)
			if err != nil {
				return err
			}
			ev, err := eval.New(eval.Options{Ops: reg})
			if err != nil {
				return err
			}
			s, err := ev.ParameterSchema(src.Definition)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if format == "json" {
				b, err := json.MarshalIndent(s, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(deps.Stdout, "%s\n", b)
				return err
			}
			_, err = fmt.Fprint(deps.Stdout, defschema.Markdown(src.Name, src.Description, s))
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the definition file (.cue, .yaml, .yml, .json)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "cue", "yaml", "yml", "json")
	return cmd
}
