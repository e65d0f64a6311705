package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// maxDescribedEvents bounds the events describe prints: the most recent.
const maxDescribedEvents = 20

func newDescribeCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe RUN",
		Short: "Show a run in detail: its steps, inputs and outputs, context, conditions and recent events",
		Long: `Shows a run as kubectl describe does: its phase and times, each step and
sub-step (phase, reason, message, attempt, times, dependencies, inputs and
outputs), the run's context (spec.context with the variables set at run time
over it), its conditions and its most recent Events.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.output != outTable {
				return fmt.Errorf("stepflow describe does not print -o %s: it prints text only (get %s -o yaml|json prints the WorkflowRun)", g.output, args[0])
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
			d := runDescription{run: run, now: time.Now()}
			// What cannot be read is said in its section; the rest is shown.
			if d.steps, _, err = runSteps(ctx, c, run); err != nil {
				d.stepsErr = err
			}
			d.vars, d.varsErr = runContext(ctx, c, run)
			d.events, d.eventsErr = runEvents(ctx, c, run)
			d.print(deps.Stdout)
			return nil
		},
	}
}

// runContext is the run's context as its steps' next evaluation sees it:
// spec.context with the variables of the journal over it.
func runContext(ctx context.Context, c client.Client, run *v1alpha1.WorkflowRun) (map[string]any, error) {
	vars := map[string]any{}
	if sc := run.Spec.Context; sc != nil && len(sc.Raw) > 0 {
		if err := json.Unmarshal(sc.Raw, &vars); err != nil {
			return nil, fmt.Errorf("spec.context is not a JSON object: %w", err)
		}
	}
	j, err := kubestore.New(c, run, nil).WithLive(c).Load(ctx)
	if err != nil {
		return vars, err
	}
	for k, v := range j.Vars {
		vars[k] = v
	}
	return vars, nil
}

// runEvents are the Events about the run, oldest first.
func runEvents(ctx context.Context, c client.Reader, run *v1alpha1.WorkflowRun) ([]corev1.Event, error) {
	var l corev1.EventList
	err := c.List(ctx, &l, client.InNamespace(run.Namespace),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("involvedObject.uid", string(run.UID))})
	if err != nil {
		return nil, apiError(err, "listing the events of "+described("workflowrun", client.ObjectKeyFromObject(run)))
	}
	slices.SortStableFunc(l.Items, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	return l.Items, nil
}

// eventTime is when an event last happened.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// runDescription is what describe prints of a run.
type runDescription struct {
	run      *v1alpha1.WorkflowRun
	now      time.Time
	steps    []v1alpha1.WorkflowStep
	stepsErr error
	vars     map[string]any
	varsErr  error
	events   []corev1.Event

	eventsErr error
}

func (d runDescription) print(w io.Writer) {
	run, st := d.run, d.run.Status
	field := func(indent int, name, value string) {
		if value == "" {
			value = "<none>"
		}
		fmt.Fprintf(w, "%s%-16s%s\n", strings.Repeat(" ", indent), name+":", value)
	}
	field(0, "Name", run.Name)
	field(0, "Namespace", run.Namespace)
	field(0, "Labels", labelList(run.Labels))
	field(0, "Created", timestamp(run.CreationTimestamp))
	if run.Spec.WorkflowRef != "" {
		field(0, "Workflow", run.Spec.WorkflowRef)
	}
	phase := string(st.Phase)
	if phase == "" {
		phase = "not started"
	}
	field(0, "Phase", phase)
	if st.Message != "" {
		field(0, "Message", st.Message)
	}
	field(0, "Mode", modeOf(st.Mode))
	field(0, "Started", timestamp(st.StartTime))
	if !st.EndTime.IsZero() {
		field(0, "Ended", timestamp(st.EndTime))
	}
	field(0, "Duration", runDuration(st, d.now))
	if st.RestartCount > 0 {
		field(0, "Restarts", strconv.Itoa(int(st.RestartCount)))
	}

	fmt.Fprintln(w, "Steps:")
	if d.stepsErr != nil {
		fmt.Fprintf(w, "  (the spec's steps could not be read: %v; showing the status only)\n", d.stepsErr)
	}
	specInputs := map[string]v1alpha1.StepInputs{}
	for _, s := range d.steps {
		specInputs[s.Name] = s.Inputs
		for _, sub := range s.SubSteps {
			specInputs[sub.Name] = sub.Inputs
		}
	}
	rows := stepRows(d.steps, st)
	if len(rows) == 0 {
		fmt.Fprintln(w, "  <none>")
	}
	for _, r := range rows {
		indent := 2
		if r.sub {
			indent = 4
		}
		fmt.Fprintf(w, "%s%s:\n", strings.Repeat(" ", indent), r.name)
		indent += 2
		field(indent, "Type", r.typ)
		field(indent, "Phase", string(r.phase()))
		for _, f := range []struct{ name, value string }{
			{"Reason", r.status.Reason}, {"Message", r.status.Message}, {"Depends On", strings.Join(r.dependsOn, ", ")},
		} {
			if f.value != "" {
				field(indent, f.name, f.value)
			}
		}
		if r.status.Attempt > 0 {
			field(indent, "Attempt", strconv.Itoa(int(r.status.Attempt)))
		}
		if !r.status.FirstExecuteTime.IsZero() {
			field(indent, "Started", timestamp(r.status.FirstExecuteTime))
			field(indent, "Last Executed", timestamp(r.status.LastExecuteTime))
			field(indent, "Duration", stepDuration(r.status, d.now))
		}
		if r.phase() == v1alpha1.WorkflowStepPhaseFailed && r.typ != "step-group" {
			// The controller keeps a failed step's last evaluated value.
			field(indent, "Debug", fmt.Sprintf("stepflow debug -n %s %s --step %s", run.Namespace, run.Name, r.name))
		}
		printValues(w, indent, "Inputs", r.status.Inputs, specInputs[r.name])
		printValues(w, indent, "Outputs", r.status.Outputs, nil)
	}

	fmt.Fprintln(w, "Context:")
	switch {
	case d.varsErr != nil:
		fmt.Fprintf(w, "  (the run's journal could not be read: %v)\n", d.varsErr)
	case len(d.vars) == 0:
		fmt.Fprintln(w, "  <none>")
	}
	keys := make([]string, 0, len(d.vars))
	for k := range d.vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b, err := json.Marshal(d.vars[k])
		if err != nil {
			b = []byte(fmt.Sprintf("<%v>", err))
		}
		fmt.Fprintf(w, "  %s = %s\n", k, truncate(string(b), 200))
	}

	fmt.Fprintln(w, "Conditions:")
	if len(st.Conditions) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := newTable(indented(w, "  "), "TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE")
		for _, c := range st.Conditions {
			row(tw, c.Type, string(c.Status), c.Reason, timestamp(c.LastTransitionTime), c.Message)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "Events:")
	events := d.events
	switch {
	case d.eventsErr != nil:
		fmt.Fprintf(w, "  (%v)\n", d.eventsErr)
	case len(events) == 0:
		fmt.Fprintln(w, "  <none>")
	default:
		if len(events) > maxDescribedEvents {
			events = events[len(events)-maxDescribedEvents:]
		}
		tw := newTable(indented(w, "  "), "TYPE", "REASON", "AGE", "FROM", "MESSAGE")
		for _, e := range events {
			from := e.Source.Component
			if from == "" {
				from = e.ReportingController
			}
			row(tw, e.Type, e.Reason, age(metav1.NewTime(eventTime(e)), d.now), from, e.Message)
		}
		tw.Flush()
	}
}

// printValues prints a step's input or output values as NAME = JSON, and
// the inputs its spec names that have no value yet as NAME (from FROM).
func printValues(w io.Writer, indent int, title string, values []v1alpha1.StepOutputValue, spec v1alpha1.StepInputs) {
	if len(values) == 0 && len(spec) == 0 {
		return
	}
	pad := strings.Repeat(" ", indent)
	fmt.Fprintf(w, "%s%s:\n", pad, title)
	seen := map[string]bool{}
	for _, v := range values {
		value := "null"
		if v.Value != nil {
			value = string(v.Value.Raw)
		}
		fmt.Fprintf(w, "%s  %s = %s\n", pad, v.Name, truncate(value, 200))
		seen[v.Name] = true
	}
	for _, in := range spec {
		if seen[in.From] {
			continue
		}
		to := ""
		if in.ParameterKey != "" {
			to = " into " + in.ParameterKey
		}
		fmt.Fprintf(w, "%s  %s (not read yet%s)\n", pad, in.From, to)
	}
}

// labelList prints labels as k=v,k=v in key order.
func labelList(l map[string]string) string {
	out := make([]string, 0, len(l))
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// modeOf prints the execution mode, top-level steps then sub-steps.
func modeOf(m v1alpha1.WorkflowExecuteMode) string {
	if m.Steps == "" && m.SubSteps == "" {
		return ""
	}
	return fmt.Sprintf("steps %s, sub-steps %s", m.Steps, m.SubSteps)
}

// indented prefixes each line written to w.
func indented(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix, atStart: true}
}

type prefixWriter struct {
	w       io.Writer
	prefix  string
	atStart bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if p.atStart {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := io.WriteString(p.w, line); err != nil {
			return 0, err
		}
		p.atStart = strings.HasSuffix(line, "\n")
	}
	return len(b), nil
}
