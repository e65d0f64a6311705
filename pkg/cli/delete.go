package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func newDeleteCmd(deps Deps, g *globals) *cobra.Command {
	var (
		all, completed bool
		selector       string
	)
	cmd := &cobra.Command{
		Use:   "delete RUN... | --all | -l SELECTOR [--completed]",
		Short: "Delete runs by name, every run of the namespace (--all) or those a label selector picks; --completed keeps unfinished runs",
		Long: `Deletes the named runs, or with --all every run of the namespace, or with
-l/--selector the runs whose labels match. With --completed only finished runs
(succeeded, failed, terminated, skipped) are deleted: a named run that is not
finished is kept, and the command says so and exits non-zero. A run's journal
and debug ConfigMaps are owned by the run and go with it.`,
		RunE: func(cmd *cobra.Command, names []string) error {
			switch {
			case len(names) > 0 && (all || selector != ""):
				return errors.New("name runs or pass --all or -l, not both")
			case len(names) == 0 && !all && selector == "":
				return errors.New("name the runs to delete, or pass --all to delete every run of the namespace (with --completed, only the finished ones)")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ns := g.ns()
			var runs []v1alpha1.WorkflowRun
			var failed []error
			if len(names) > 0 {
				for _, name := range names {
					run, err := getRun(ctx, c, types.NamespacedName{Namespace: ns, Name: name})
					if err != nil {
						failed = append(failed, err)
						continue
					}
					if completed && !run.Status.Finished {
						failed = append(failed, fmt.Errorf("%s is not finished (%s): not deleted (--completed)",
							described("workflowrun", client.ObjectKeyFromObject(run)), phaseOf(run)))
						continue
					}
					runs = append(runs, *run)
				}
			} else {
				opts := []client.ListOption{client.InNamespace(ns)}
				where := "namespace " + ns
				if selector != "" {
					sel, err := labels.Parse(selector)
					if err != nil {
						return fmt.Errorf("--selector %q: %w", selector, err)
					}
					opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
					where += " matching " + selector
				}
				var list v1alpha1.WorkflowRunList
				if err := c.List(ctx, &list, opts...); err != nil {
					return apiError(err, "listing workflowruns in "+where)
				}
				for _, run := range list.Items {
					if !completed || run.Status.Finished {
						runs = append(runs, run)
					}
				}
				if len(runs) == 0 {
					what := "workflowruns"
					if completed {
						what = "finished workflowruns"
					}
					fmt.Fprintf(deps.Stderr, "No %s found in %s.\n", what, where)
				}
			}
			for i := range runs {
				run := &runs[i]
				key := client.ObjectKeyFromObject(run)
				// Preconditions: delete the run that was read, not one
				// created again under its name since.
				err := c.Delete(ctx, run, client.Preconditions{UID: &run.UID}, client.PropagationPolicy("Background"))
				if err := client.IgnoreNotFound(err); err != nil {
					failed = append(failed, apiError(err, "deleting "+described("workflowrun", key)))
					continue
				}
				fmt.Fprintf(deps.Stdout, "%s deleted\n", described("workflowrun", key))
			}
			return errors.Join(failed...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "delete every run of the namespace")
	cmd.Flags().BoolVar(&completed, "completed", false, "delete only finished runs")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "delete the runs whose labels match this selector (e.g. app=web)")
	return cmd
}

// phaseOf is a run's phase for messages, "pending" before the controller
// wrote one.
func phaseOf(run *v1alpha1.WorkflowRun) string {
	if run.Status.Phase == "" {
		return "pending"
	}
	return string(run.Status.Phase)
}
