package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// outCUE prints a definition as a file in `vela def` layout.
const outCUE = "cue"

// defNamespaces are the namespaces the controller looks a run's step types
// up in, in its order: the namespace, then the system namespace.
func defNamespaces(ns, system string) []string {
	return definition.Cluster{SystemNamespace: system}.For(context.Background(), ns).Namespaces()
}

// addSystemNamespaceFlag adds --system-namespace, the controller's flag of
// the same name.
func addSystemNamespaceFlag(cmd *cobra.Command, system *string) {
	cmd.Flags().StringVar(system, "system-namespace", definition.DefaultSystemNamespace,
		"namespace of the definitions shared by every namespace, as the controller's flag")
}

func newDefGetCmd(deps Deps, g *globals) *cobra.Command {
	var system string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Print the step definition a run of the namespace would use: its CUE template (-o cue: a vela def file; -o yaml|json: the object)",
		Long: `Prints the WorkflowStepDefinition a run in the namespace would use for step
type NAME: the namespace's own, else the system namespace's, as the controller
looks it up. Prints its CUE template; with -o cue, a file in 'vela def' layout
(name, type and description, then the template) that def apply -f takes back
unchanged; with -o yaml|json, the object as the API server holds it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output, outCUE, outYAML, outJSON); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			def, err := findDefinition(ctx, c, args[0], defNamespaces(g.ns(), system))
			if err != nil {
				return err
			}
			if g.output == outYAML || g.output == outJSON {
				return printServerObject(ctx, deps.Stdout, c, g.output, kindDefinition, client.ObjectKeyFromObject(def))
			}
			src, err := definition.FromObject(def)
			if err != nil {
				return err
			}
			if g.output == outCUE {
				b, err := src.Format()
				if err != nil {
					return fmt.Errorf("%s: %w", described("workflowstepdefinition", client.ObjectKeyFromObject(def)), err)
				}
				_, err = deps.Stdout.Write(b)
				return err
			}
			_, err = io.WriteString(deps.Stdout, strings.TrimRight(src.Template, "\n")+"\n")
			return err
		},
	}
	addSystemNamespaceFlag(cmd, &system)
	return cmd
}

// findDefinition reads the step definition name from the first of
// namespaces that has it.
func findDefinition(ctx context.Context, c client.Reader, name string, namespaces []string) (*v1beta1.WorkflowStepDefinition, error) {
	var tried []string
	for _, ns := range namespaces {
		var def v1beta1.WorkflowStepDefinition
		key := types.NamespacedName{Namespace: ns, Name: name}
		err := c.Get(ctx, key, &def)
		if err == nil {
			return &def, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, apiError(err, described("workflowstepdefinition", key))
		}
		tried = append(tried, key.String())
	}
	return nil, fmt.Errorf("workflowstepdefinition %s not found, nor %s", tried[0], strings.Join(tried[1:], ", "))
}

func newDefListCmd(deps Deps, g *globals) *cobra.Command {
	var (
		all    bool
		system string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the step definitions runs of the namespace can use: NAME DESCRIPTION READY FROM",
		Long: `Lists the step definitions a run in the namespace can use, as the controller
looks them up: the namespace's own, then those of the system namespace that
the namespace does not define again. FROM is the namespace each comes from.
With -A, lists the definitions of every namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.output, outWide, outYAML, outJSON); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			namespaces := []string{""}
			where := "any namespace"
			if !all {
				namespaces = defNamespaces(g.ns(), system)
				where = "namespace " + strings.Join(namespaces, " or ")
			}
			var defs []v1beta1.WorkflowStepDefinition
			if all {
				var l v1beta1.WorkflowStepDefinitionList
				if err := c.List(ctx, &l); err != nil {
					return apiError(err, "listing workflowstepdefinitions in "+where)
				}
				defs = l.Items
			} else {
				// The namespace's own definition hides the system one.
				visible, err := definition.Cluster{Reader: c, SystemNamespace: system}.For(ctx, g.ns()).List()
				if err != nil {
					return apiError(err, "listing workflowstepdefinitions in "+where)
				}
				for _, v := range visible {
					defs = append(defs, *v.Object.(*v1beta1.WorkflowStepDefinition))
				}
			}
			if g.output == outYAML || g.output == outJSON {
				// As the table: by name (every namespace's: as listed).
				return printObject(deps.Stdout, c.Scheme(), g.output, &v1beta1.WorkflowStepDefinitionList{Items: defs})
			}
			slices.SortStableFunc(defs, func(a, b v1beta1.WorkflowStepDefinition) int {
				if c := strings.Compare(a.Name, b.Name); c != 0 || all {
					return c
				}
				return strings.Compare(a.Namespace, b.Namespace)
			})
			if len(defs) == 0 {
				fmt.Fprintf(deps.Stderr, "No workflowstepdefinitions found in %s.\n", where)
				return nil
			}
			header := []string{"NAME", "DESCRIPTION", "READY", "FROM"}
			if all {
				header = []string{"NAMESPACE", "NAME", "DESCRIPTION", "READY"}
			}
			tw := newTable(deps.Stdout, header...)
			for _, d := range defs {
				desc := d.Annotations[descriptionAnnotation]
				if g.output != outWide {
					desc = truncate(desc, 60)
				}
				cells := []string{d.Name, desc, ready(&d), d.Namespace}
				if all {
					cells = []string{d.Namespace, d.Name, desc, ready(&d)}
				}
				row(tw, cells...)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the definitions of every namespace")
	addSystemNamespaceFlag(cmd, &system)
	return cmd
}
