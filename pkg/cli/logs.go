package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

func newLogsCmd(deps Deps, g *globals) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   "logs RUN [--step STEP]",
		Short: "Print the #Log lines a run's steps wrote (the last ones of each step are kept)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output, outYAML, outJSON); err != nil {
				return err
			}
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
			d, err := kubestore.New(c, run, nil).WithLive(c).Load(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", described("workflowrun", key), err)
			}
			logs := d.Logs
			if step != "" {
				if len(logs[step]) == 0 && !hasStep(run, step) {
					return fmt.Errorf("%s has no step %q", described("workflowrun", key), step)
				}
				logs = map[string][]string{step: logs[step]}
			}
			if g.output != outTable {
				return printData(deps.Stdout, g.output, logs)
			}
			if noLines(logs) {
				// On stderr, as kubectl's "No resources found": a script
				// reading stdout still gets no lines.
				what := described("workflowrun", key)
				if step != "" {
					what = fmt.Sprintf("step %s of %s", step, what)
				}
				fmt.Fprintf(deps.Stderr, "No log lines: %s has written none yet (a step writes them with op.#Log).\n", what)
				return nil
			}
			if step != "" {
				for _, l := range logs[step] {
					fmt.Fprintln(deps.Stdout, l)
				}
				return nil
			}
			printLogs(deps.Stdout, run, logs)
			return nil
		},
	}
	cmd.Flags().StringVar(&step, "step", "", "print only this step's lines")
	return cmd
}

// noLines reports whether logs hold no line.
func noLines(logs map[string][]string) bool {
	for _, ls := range logs {
		if len(ls) > 0 {
			return false
		}
	}
	return true
}

// printLogs prints each step's lines prefixed with its name, steps in the
// order of the run's status.
func printLogs(w io.Writer, run *v1alpha1.WorkflowRun, logs map[string][]string) {
	var order []string
	listed := map[string]bool{}
	add := func(name string) {
		if !listed[name] && len(logs[name]) > 0 {
			order = append(order, name)
			listed[name] = true
		}
	}
	for _, s := range run.Status.Steps {
		add(s.Name)
		for _, sub := range s.SubStepsStatus {
			add(sub.Name)
		}
	}
	rest := make([]string, 0, len(logs))
	for name := range logs {
		rest = append(rest, name)
	}
	sort.Strings(rest)
	for _, name := range rest {
		add(name)
	}
	for _, name := range order {
		for _, l := range logs[name] {
			fmt.Fprintf(w, "[%s] %s\n", name, l)
		}
	}
}

// hasStep reports whether the run's status or inline spec names step.
func hasStep(run *v1alpha1.WorkflowRun, step string) bool {
	for _, r := range stepRows(nil, run.Status) {
		if r.name == step {
			return true
		}
	}
	if run.Spec.WorkflowSpec != nil {
		for _, r := range stepRows(run.Spec.WorkflowSpec.Steps, v1alpha1.WorkflowRunStatus{}) {
			if r.name == step {
				return true
			}
		}
	}
	return false
}

// DebugValue is what `debug -o json|yaml` prints: a step's evaluated value
// as the controller kept it.
type DebugValue struct {
	Step  string `json:"step"`
	ID    string `json:"id"`
	Value any    `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

func newDebugCmd(deps Deps, g *globals) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   "debug RUN --step STEP",
		Short: "Print a step's evaluated value, kept for runs annotated " + engine.DebugAnnotation + `: "true"`,
		Long: `Prints the value a step's template evaluated to at its last evaluation (as
JSON; -o yaml|json print it with the step attempt's id). The controller keeps
these values only for runs annotated ` + engine.DebugAnnotation + `: "true".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output, outYAML, outJSON); err != nil {
				return err
			}
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
			annotated := run.Annotations[engine.DebugAnnotation] == "true"
			var cm corev1.ConfigMap
			err = c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: controller.DebugConfigMapName(key.Name)}, &cm)
			if err != nil && !apierrors.IsNotFound(err) {
				return apiError(err, described("configmap", types.NamespacedName{Namespace: key.Namespace, Name: controller.DebugConfigMapName(key.Name)}))
			}
			raw, found := cm.Data[step]
			switch {
			case !found && !annotated:
				return fmt.Errorf("%s keeps no debug values: annotate it with %s: \"true\" "+
					"(kubectl annotate workflowrun %s -n %s %s=true); each step then keeps its value when it is next evaluated",
					described("workflowrun", key), engine.DebugAnnotation, key.Name, key.Namespace, engine.DebugAnnotation)
			case !found && !hasStep(run, step):
				return fmt.Errorf("%s has no step %q", described("workflowrun", key), step)
			case !found:
				return fmt.Errorf("no value kept for step %q of %s yet: a step keeps one each time it is evaluated", step, described("workflowrun", key))
			case !annotated:
				fmt.Fprintf(deps.Stderr, "note: %s is no longer annotated %s: \"true\"; this value may be old\n",
					described("workflowrun", key), engine.DebugAnnotation)
			}
			v := DebugValue{Step: step}
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				return fmt.Errorf("the debug value of step %q is not JSON: %w", step, err)
			}
			v.Step = step
			if g.output != outTable {
				return printData(deps.Stdout, g.output, v)
			}
			if v.Error != "" {
				return fmt.Errorf("step %q (attempt %s): its value could not be kept: %s", step, v.ID, v.Error)
			}
			return printData(deps.Stdout, outJSON, v.Value)
		},
	}
	cmd.Flags().StringVar(&step, "step", "", "the step whose value to print")
	_ = cmd.MarkFlagRequired("step")
	return cmd
}
