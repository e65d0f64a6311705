package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

func newRunCmd(deps Deps, g *globals) *cobra.Command {
	var file string
	var watch bool
	cmd := &cobra.Command{
		Use:   "run -f FILE [--watch]",
		Short: "Create or update the runs, workflows and step definitions of a file",
		Long: `Creates, or updates with server-side apply, every WorkflowRun, Workflow and
WorkflowStepDefinition in FILE (YAML with one or more documents, or JSON; "-"
reads standard input), step definitions first. A document without a namespace
goes to -n, else the kubeconfig's namespace. A run that exists already is
updated, not started again (see restart).

With --watch, the file must hold one WorkflowRun: its steps are followed, one
line per step phase change, until the run finishes. The command then exits
non-zero if the run failed or was terminated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFile(cmd.Context(), deps, g, file, watch, cmd.InOrStdin())
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `YAML or JSON file ("-" for standard input)`)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the run's steps until it finishes")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml", "json")
	return cmd
}

func runFile(ctx context.Context, deps Deps, g *globals, file string, watch bool, stdin io.Reader) error {
	s, err := api.NewScheme()
	if err != nil {
		return err
	}
	ms, err := readManifests(file, stdin, s, kindRun, kindWorkflow, kindDefinition)
	if err != nil {
		return err
	}
	var runs []manifest
	for _, m := range ms {
		if err := inNamespace(m.obj, g.ns(), g.namespace != ""); err != nil {
			return fmt.Errorf("%s: %w", m.source, err)
		}
		if m.obj.GroupVersionKind() == kindRun {
			runs = append(runs, m)
		}
	}
	if watch && len(runs) != 1 {
		return fmt.Errorf("--watch follows one WorkflowRun, and %s holds %d", file, len(runs))
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	sortForApply(ms)
	for _, m := range ms {
		what, err := apply(ctx, c, m.obj)
		if err != nil {
			return fmt.Errorf("%s: %w", m.source, err)
		}
		applied(deps.Stdout, m.obj, what)
	}
	if !watch {
		return nil
	}
	return follow(ctx, deps.Stdout, c, client.ObjectKeyFromObject(runs[0].obj), time.Now)
}

func newGetCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get RUN",
		Short: "Show a run's steps (-o yaml|json: the WorkflowRun)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output, outWide, outYAML, outJSON); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			key := types.NamespacedName{Namespace: g.ns(), Name: args[0]}
			if g.output == outYAML || g.output == outJSON {
				return printServerObject(ctx, deps.Stdout, c, g.output, kindRun, key)
			}
			run, err := getRun(ctx, c, key)
			if err != nil {
				return err
			}
			steps, _, err := runSteps(ctx, c, run)
			if err != nil {
				fmt.Fprintf(deps.Stderr, "warning: %v: showing the steps of its status only\n", err)
			}
			printRun(deps.Stdout, run, steps, g.output == outWide, time.Now())
			return nil
		},
	}
}

// printRun prints the run's phase, start and duration, then one row per
// step with its sub-steps drawn as a tree below it, then the outputs each
// step exported.
func printRun(w io.Writer, run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep, wide bool, now time.Time) {
	phase := string(run.Status.Phase)
	if phase == "" {
		phase = "not started"
	}
	// status.suspend is also true while only a step holds the run, which
	// the phase already says.
	if engine.SuspendedFromOutside(&run.Status) && !run.Status.Finished {
		phase += " (suspended)"
	}
	fmt.Fprintf(w, "workflowrun %s/%s: %s", run.Namespace, run.Name, phase)
	if run.Status.Message != "" {
		fmt.Fprintf(w, ": %s", run.Status.Message)
	}
	fmt.Fprintln(w)
	if !run.Status.StartTime.IsZero() {
		fmt.Fprintf(w, "started %s, duration %s\n", timestamp(run.Status.StartTime), runDuration(run.Status, now))
	}
	header := []string{"NAME", "TYPE", "PHASE", "STARTED", "DURATION", "DEPENDS ON", "REASON", "MESSAGE"}
	if wide {
		header = append(header, "ATTEMPT", "ID", "LAST EXECUTED")
	}
	tw := newTable(w, header...)
	rows := stepRows(steps, run.Status)
	for i, r := range rows {
		cells := []string{treeName(rows, i), r.typ, string(r.phase()), timestamp(r.status.FirstExecuteTime),
			stepDuration(r.status, now), strings.Join(r.dependsOn, ","), r.status.Reason, r.status.Message}
		if wide {
			cells = append(cells, strconv.Itoa(int(r.status.Attempt)), r.status.ID, timestamp(r.status.LastExecuteTime))
		}
		row(tw, cells...)
	}
	tw.Flush()
	printOutputs(w, rows)
}

// treeName is the name of rows[i], drawn as a branch of its group when it
// is a sub-step.
func treeName(rows []stepRow, i int) string {
	if !rows[i].sub {
		return rows[i].name
	}
	if i+1 < len(rows) && rows[i+1].sub {
		return "├─ " + rows[i].name
	}
	return "└─ " + rows[i].name
}

// printOutputs lists the outputs of each step that exported any, as
// STEP.NAME = VALUE (JSON), under an "outputs:" line.
func printOutputs(w io.Writer, rows []stepRow) {
	first := true
	for _, r := range rows {
		for _, o := range r.status.Outputs {
			if first {
				fmt.Fprintln(w, "outputs:")
				first = false
			}
			value := "null"
			if o.Value != nil {
				value = string(o.Value.Raw)
			}
			fmt.Fprintf(w, "  %s.%s = %s\n", r.name, o.Name, truncate(value, 200))
		}
	}
}

// timestamp prints a time as RFC 3339 in UTC, "" when unset.
func timestamp(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// stepDuration is how long a step has run: from its first execution to
// its last once it finished, to now while it has not.
func stepDuration(st v1alpha1.StepStatus, now time.Time) string {
	end := metav1.Time{}
	if stepFinished(st.Phase) {
		end = st.LastExecuteTime
	}
	return span(st.FirstExecuteTime, end, now)
}

// stepRow is a step or sub-step of a run, with its status if it has one.
type stepRow struct {
	name, typ string
	sub       bool
	dependsOn []string
	status    v1alpha1.StepStatus
}

func (r stepRow) phase() v1alpha1.WorkflowStepPhase {
	if r.status.Phase == "" {
		return v1alpha1.WorkflowStepPhasePending
	}
	return r.status.Phase
}

// stepRows lists the run's steps in spec order, each with its status and
// followed by its sub-steps, then any step only the status names (the
// spec changed since).
func stepRows(steps []v1alpha1.WorkflowStep, st v1alpha1.WorkflowRunStatus) []stepRow {
	statuses := map[string]v1alpha1.StepStatus{}
	subStatuses := map[string][]v1alpha1.StepStatus{}
	for _, s := range st.Steps {
		statuses[s.Name] = s.StepStatus
		subStatuses[s.Name] = s.SubStepsStatus
		for _, sub := range s.SubStepsStatus {
			statuses[sub.Name] = sub
		}
	}
	var out []stepRow
	listed := map[string]bool{}
	add := func(base v1alpha1.WorkflowStepBase, sub bool) {
		ss := statuses[base.Name]
		if base.Type == "" {
			base.Type = ss.Type
		}
		out = append(out, stepRow{name: base.Name, typ: base.Type, sub: sub, dependsOn: base.DependsOn, status: ss})
		listed[base.Name] = true
	}
	// The sub-steps only the status names follow those of the spec.
	addStatusSubs := func(parent string) {
		for _, sub := range subStatuses[parent] {
			if !listed[sub.Name] {
				add(v1alpha1.WorkflowStepBase{Name: sub.Name}, true)
			}
		}
	}
	for _, s := range steps {
		add(s.WorkflowStepBase, false)
		for _, sub := range s.SubSteps {
			add(sub, true)
		}
		addStatusSubs(s.Name)
	}
	for _, s := range st.Steps {
		if !listed[s.Name] {
			add(v1alpha1.WorkflowStepBase{Name: s.Name}, false)
			addStatusSubs(s.Name)
		}
	}
	return out
}

func newListCmd(deps Deps, g *globals) *cobra.Command {
	var (
		all      bool
		selector string
		status   string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List runs, newest first: NAME PHASE STEPS AGE (-o wide: DURATION MESSAGE; -o name)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.output, outWide, outName, outYAML, outJSON); err != nil {
				return err
			}
			if err := checkRunPhase(status); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			where := "any namespace"
			if !all {
				opts = append(opts, client.InNamespace(g.ns()))
				where = "namespace " + g.ns()
			}
			if selector != "" {
				sel, err := labels.Parse(selector)
				if err != nil {
					return fmt.Errorf("--selector %q: %w", selector, err)
				}
				opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
				where += " matching " + selector
			}
			if status != "" {
				where += " with status " + status
			}
			ctx := cmd.Context()
			if g.output == outYAML || g.output == outJSON {
				l, err := listServer(ctx, c, kindRun, opts...)
				if err != nil {
					return err
				}
				l.Items = slices.DeleteFunc(l.Items, func(u unstructured.Unstructured) bool {
					phase, _, _ := unstructured.NestedString(u.Object, "status", "status")
					return status != "" && phase != status
				})
				slices.SortStableFunc(l.Items, func(a, b unstructured.Unstructured) int {
					return newestFirst(a.GetCreationTimestamp(), b.GetCreationTimestamp(), a.GetName(), b.GetName())
				})
				return printObject(deps.Stdout, c.Scheme(), g.output, l)
			}
			var runs v1alpha1.WorkflowRunList
			if err := c.List(ctx, &runs, opts...); err != nil {
				return apiError(err, "listing workflowruns in "+where)
			}
			runs.Items = slices.DeleteFunc(runs.Items, func(r v1alpha1.WorkflowRun) bool {
				return status != "" && string(r.Status.Phase) != status
			})
			if len(runs.Items) == 0 {
				fmt.Fprintf(deps.Stderr, "No workflowruns found in %s.\n", where)
				return nil
			}
			slices.SortStableFunc(runs.Items, func(a, b v1alpha1.WorkflowRun) int {
				return newestFirst(a.CreationTimestamp, b.CreationTimestamp, a.Name, b.Name)
			})
			if g.output == outName {
				for _, r := range runs.Items {
					fmt.Fprintf(deps.Stdout, "%s/%s\n", resourceName(kindRun), r.Name)
				}
				return nil
			}
			// The step counts of runs of a Workflow need its steps; on
			// error they count the steps their status lists.
			var workflows v1alpha1.WorkflowList
			_ = c.List(ctx, &workflows, opts...)
			printRuns(deps.Stdout, runs.Items, workflows.Items, all, g.output == outWide, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the runs of every namespace")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, as kubectl's (e.g. stepflow.dev/category=ROLLBACK)")
	cmd.Flags().StringVar(&status, "status", "", "list only the runs in this phase: "+strings.Join(runPhaseNames(), ", "))
	_ = cmd.RegisterFlagCompletionFunc("status", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return runPhaseNames(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// runPhases are the phases a run can be in, as its status names them.
var runPhases = []v1alpha1.WorkflowRunPhase{
	v1alpha1.WorkflowRunInitializing, v1alpha1.WorkflowRunExecuting, v1alpha1.WorkflowRunSuspending,
	v1alpha1.WorkflowRunSucceeded, v1alpha1.WorkflowRunFailed, v1alpha1.WorkflowRunTerminated, v1alpha1.WorkflowRunSkipped,
}

func runPhaseNames() []string {
	out := make([]string, len(runPhases))
	for i, p := range runPhases {
		out[i] = string(p)
	}
	return out
}

// checkRunPhase rejects a --status that no run can have.
func checkRunPhase(phase string) error {
	if phase == "" || slices.Contains(runPhaseNames(), phase) {
		return nil
	}
	return fmt.Errorf("--status %q: want one of %s", phase, strings.Join(runPhaseNames(), ", "))
}

// newestFirst orders objects by creation time, newest first, then by name.
func newestFirst(a, b metav1.Time, nameA, nameB string) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	return strings.Compare(nameA, nameB)
}

func printRuns(w io.Writer, runs []v1alpha1.WorkflowRun, workflows []v1alpha1.Workflow, withNamespace, wide bool, now time.Time) {
	steps := map[types.NamespacedName]int{}
	for _, wf := range workflows {
		steps[types.NamespacedName{Namespace: wf.Namespace, Name: wf.Name}] = len(wf.Steps)
	}
	header := []string{"NAME", "PHASE", "STEPS", "AGE"}
	if wide {
		header = append(header, "DURATION", "MESSAGE")
	}
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	tw := newTable(w, header...)
	for _, run := range runs {
		total := len(run.Status.Steps)
		if run.Spec.WorkflowSpec != nil {
			total = max(total, len(run.Spec.WorkflowSpec.Steps))
		} else if run.Spec.WorkflowRef != "" {
			total = max(total, steps[types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}])
		}
		cells := []string{run.Name, string(run.Status.Phase), stepCount(run.Status, total), age(run.CreationTimestamp, now)}
		if wide {
			cells = append(cells, runDuration(run.Status, now), run.Status.Message)
		}
		if withNamespace {
			cells = append([]string{run.Namespace}, cells...)
		}
		row(tw, cells...)
	}
	tw.Flush()
}

// runDuration is how long the run has been executing: from its start to
// its end, or to now while it has not ended.
func runDuration(st v1alpha1.WorkflowRunStatus, now time.Time) string {
	return span(st.StartTime, st.EndTime, now)
}

// stepCount is "finished/total" over a run's top-level steps.
func stepCount(st v1alpha1.WorkflowRunStatus, total int) string {
	done := 0
	for _, s := range st.Steps {
		if stepFinished(s.Phase) {
			done++
		}
	}
	return fmt.Sprintf("%d/%d", done, total)
}

func stepFinished(p v1alpha1.WorkflowStepPhase) bool {
	switch p {
	case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed,
		v1alpha1.WorkflowStepPhaseSkipped, v1alpha1.WorkflowStepPhaseStopped:
		return true
	}
	return false
}
