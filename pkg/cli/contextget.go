package cli

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

func newContextGetCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get RUN [KEY]",
		Short: "Print a run's context as its steps see it: spec.context with the variables set at run time over it",
		Long: `Prints a run's context as each step's next evaluation sees it: the run's
spec.context, with the variables set at run time (context set, op.#Export...)
over it. With KEY, prints only that variable's value, as JSON; the command
fails if the run has no such variable. Without KEY, prints KEY=VALUE lines
(VALUE as JSON), or the whole context with -o json|yaml.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			run, err := getRun(ctx, c, key)
			if err != nil {
				return err
			}
			vars := map[string]any{}
			if sc := run.Spec.Context; sc != nil && len(sc.Raw) > 0 {
				if err := json.Unmarshal(sc.Raw, &vars); err != nil {
					return fmt.Errorf("%s: spec.context is not a JSON object: %w", described("workflowrun", key), err)
				}
			}
			d, err := kubestore.New(c, run, nil).WithLive(c).Load(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", described("workflowrun", key), err)
			}
			for k, v := range d.Vars {
				vars[k] = v
			}
			if len(args) == 2 {
				v, ok := vars[args[1]]
				if !ok {
					return fmt.Errorf("%s has no context variable %q (it has: %s)", described("workflowrun", key), args[1], varNames(vars))
				}
				format := g.output
				if format == outTable {
					format = outJSON
				}
				return printData(deps.Stdout, format, v)
			}
			if g.output != outTable {
				return printData(deps.Stdout, g.output, vars)
			}
			if len(vars) == 0 {
				fmt.Fprintf(deps.Stderr, "%s has no context variables.\n", described("workflowrun", key))
				return nil
			}
			for _, k := range sortedKeys(vars) {
				b, err := json.Marshal(vars[k])
				if err != nil {
					return fmt.Errorf("context.%s: %w", k, err)
				}
				fmt.Fprintf(deps.Stdout, "%s=%s\n", k, b)
			}
			return nil
		},
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// varNames lists a context's variables for an error message.
func varNames(m map[string]any) string {
	if len(m) == 0 {
		return "none"
	}
	s := ""
	for i, k := range sortedKeys(m) {
		if i > 0 {
			s += ", "
		}
		s += k
	}
	return s
}
