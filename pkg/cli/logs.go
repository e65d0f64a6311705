package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

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
	var (
		step       string
		follow     bool
		timestamps bool
		since      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "logs RUN [--step STEP] [-f] [--timestamps] [--since D]",
		Short: "Print the #Log lines a run's steps wrote (the last ones of each step are kept)",
		Long: `Prints the #Log lines of the run's steps, each prefixed with its step's name
(not with --step), steps in the order of the run's status. With -f it goes on
printing new lines as the run's journal changes (it watches it) and exits when
the run finishes, whatever its phase. --timestamps prefixes each line with the
time it was written (RFC 3339, UTC; "-" for a line written by a controller
that kept no times), and --since D prints only the lines written in the last
D (e.g. 5m; lines without a time are left out).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output, outYAML, outJSON); err != nil {
				return err
			}
			if g.output != outTable && (follow || timestamps || since != 0) {
				return fmt.Errorf("-o %s prints the kept lines as they are: -f, --timestamps and --since print text only", g.output)
			}
			if since < 0 {
				return fmt.Errorf("--since %v: want a positive duration", since)
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
			if step != "" && !hasStep(run, step) {
				d, err := kubestore.New(c, run, nil).WithLive(c).Load(ctx)
				if err != nil {
					return fmt.Errorf("%s: %w", described("workflowrun", key), err)
				}
				if len(d.Logs[step]) == 0 {
					return fmt.Errorf("%s has no step %q", described("workflowrun", key), step)
				}
			}
			var from time.Time
			if since > 0 {
				from = time.Now().Add(-since)
			}
			view := newLogView(deps.Stdout, step, timestamps, from)
			if follow {
				return followLogs(ctx, c, key, view)
			}
			d, err := kubestore.New(c, run, nil).WithLive(c).Load(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", described("workflowrun", key), err)
			}
			if g.output != outTable {
				logs := d.Logs
				if step != "" {
					logs = map[string][]string{step: logs[step]}
				}
				return printData(deps.Stdout, g.output, logs)
			}
			if view.print(run, d) == 0 {
				// On stderr, as kubectl's "No resources found": a script
				// reading stdout still gets no lines.
				what := described("workflowrun", key)
				if step != "" {
					what = fmt.Sprintf("step %s of %s", step, what)
				}
				if since > 0 {
					fmt.Fprintf(deps.Stderr, "No log lines: %s has written none in the last %v.\n", what, since)
					return nil
				}
				fmt.Fprintf(deps.Stderr, "No log lines: %s has written none yet (a step writes them with op.#Log).\n", what)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&step, "step", "", "print only this step's lines")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "go on printing new lines until the run finishes")
	cmd.Flags().BoolVar(&timestamps, "timestamps", false, "prefix each line with the time it was written (RFC 3339)")
	cmd.Flags().DurationVar(&since, "since", 0, "print only the lines written in the last D (e.g. 5m, 1h)")
	return cmd
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
// as the debug ConfigMap keeps it (controller.DebugRecord), with its step.
type DebugValue struct {
	Step string `json:"step"`
	controller.DebugRecord
}

func newDebugCmd(deps Deps, g *globals) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   "debug RUN --step STEP",
		Short: "Print a step's evaluated value: kept when it failed, or for runs annotated " + engine.DebugAnnotation + `: "true"`,
		Long: `Prints the value a step's template evaluated to (as JSON; -o yaml|json print
it with the step attempt's id and how it failed). The controller keeps the
value of every evaluation of runs annotated ` + engine.DebugAnnotation + `: "true",
and, for every run, the last evaluated value of a step attempt that failed,
with its error (and its CUE positions). A value is kept up to 32 KiB (a longer
one is cut, and says how much), Secrets' data and passwords redacted.`,
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
			case !found && !hasStep(run, step):
				return fmt.Errorf("%s has no step %q", described("workflowrun", key), step)
			case !found && !annotated:
				return fmt.Errorf("%s keeps no debug value of step %q: annotate it with %s: \"true\" "+
					"(kubectl annotate workflowrun %s -n %s %s=true); each step then keeps its value when it is next evaluated "+
					"(without it, a step keeps its value only when it fails)",
					described("workflowrun", key), step, engine.DebugAnnotation, key.Name, key.Namespace, engine.DebugAnnotation)
			case !found:
				return fmt.Errorf("no value kept for step %q of %s yet: a step keeps one each time it is evaluated", step, described("workflowrun", key))
			}
			v := DebugValue{Step: step}
			if err := json.Unmarshal([]byte(raw), &v.DebugRecord); err != nil {
				return fmt.Errorf("the debug value of step %q is not JSON: %w", step, err)
			}
			debugNotes(deps.Stderr, run, key, step, annotated, &v.DebugRecord)
			if g.output != outTable {
				return printData(deps.Stdout, g.output, v)
			}
			return printDebugValue(deps.Stdout, step, &v.DebugRecord)
		},
	}
	cmd.Flags().StringVar(&step, "step", "", "the step whose value to print")
	_ = cmd.MarkFlagRequired("step")
	return cmd
}

// debugNotes says on w why the value of step was kept and how old it is.
func debugNotes(w io.Writer, run *v1alpha1.WorkflowRun, key types.NamespacedName, step string, annotated bool, r *controller.DebugRecord) {
	if f := r.Failure; f != nil {
		what := "failed"
		if f.Retry {
			what = "failed and was retried"
		}
		why := "because it failed"
		if !annotated {
			why += fmt.Sprintf(" (%s is not annotated %s: \"true\")", described("workflowrun", key), engine.DebugAnnotation)
		}
		fmt.Fprintf(w, "note: attempt %s of step %q %s (%s) at %s; its last evaluated value is kept %s\n", r.ID, step, what, f.Reason, r.At, why)
		if f.Message != "" {
			fmt.Fprintf(w, "error: %s\n", f.Message)
		}
	} else if !annotated {
		fmt.Fprintf(w, "note: %s is no longer annotated %s: \"true\"; this value may be old\n",
			described("workflowrun", key), engine.DebugAnnotation)
	}
	for _, row := range stepRows(nil, run.Status) {
		if row.name == step && row.status.ID != "" && row.status.ID != r.ID {
			fmt.Fprintf(w, "note: this value is of attempt %s; step %q is now at attempt %s (%s)\n", r.ID, step, row.status.ID, row.phase())
		}
	}
}

// printDebugValue prints the value of step as JSON, or what is left of it.
func printDebugValue(w io.Writer, step string, r *controller.DebugRecord) error {
	switch {
	case r.Error != "":
		return fmt.Errorf("step %q (attempt %s): its value could not be kept: %s", step, r.ID, r.Error)
	case r.Dropped != "":
		return fmt.Errorf("step %q (attempt %s): %s", step, r.ID, r.Dropped)
	case r.ValueJSON != "":
		_, err := fmt.Fprintf(w, "%s\n... %d bytes cut: a value is kept up to %d bytes\n", r.ValueJSON, r.Cut, controller.MaxDebugValueBytes)
		return err
	case r.Value == nil && r.Failure != nil:
		_, err := fmt.Fprintf(w, "(no value: attempt %s failed before its template had one)\n", r.ID)
		return err
	}
	return printData(w, outJSON, r.Value)
}
