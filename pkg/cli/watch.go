package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// follow prints a line for each step phase change of a run until the run
// finishes, and fails unless it succeeded (followRun).
func follow(ctx context.Context, w io.Writer, c client.WithWatch, key types.NamespacedName, now func() time.Time) error {
	return followRun(ctx, c, key, &progress{w: w, now: now, seen: map[string]v1alpha1.WorkflowStepPhase{}}, nil)
}

// runView shows the states of a run that followRun reads.
type runView interface {
	// show shows a state of the run, whose steps (from its spec or its
	// Workflow; nil when they could not be read) are steps, and reports
	// whether the run has finished.
	show(run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep) bool
	// outcome ends the view of a finished run: nil if it succeeded (or was
	// skipped), an error naming how it ended otherwise.
	outcome(run *v1alpha1.WorkflowRun) error
}

// followRun shows each state of a run on v until the run finishes, and
// returns v's outcome. It reads the run, then watches it from that
// resourceVersion, so no change falls between the two; when the server
// ends the watch it reads and watches again. At each tick, when tick is
// not nil, it shows the last state again (durations grow).
func followRun(ctx context.Context, c client.WithWatch, key types.NamespacedName, v runView, tick <-chan time.Time) error {
	var steps []v1alpha1.WorkflowStep
	resolved := false
	for {
		run, err := getRun(ctx, c, key)
		if err != nil {
			return err
		}
		if !resolved {
			// On error the status names the steps too.
			steps, _, _ = runSteps(ctx, c, run)
			resolved = true
		}
		if v.show(run, steps) {
			return v.outcome(run)
		}
		wi, err := c.Watch(ctx, &v1alpha1.WorkflowRunList{}, &client.ListOptions{
			Namespace:     key.Namespace,
			FieldSelector: fields.OneTermEqualSelector("metadata.name", key.Name),
			Raw:           &metav1.ListOptions{ResourceVersion: run.ResourceVersion},
		})
		if err != nil {
			return apiError(err, "watching "+described("workflowrun", key))
		}
		run, err = watchRun(ctx, wi, key, run, steps, v, tick)
		wi.Stop()
		if err != nil {
			return err
		}
		if run != nil {
			return v.outcome(run)
		}
	}
}

// progress prints a line each time a step's phase changes, and remembers
// the phase last printed for each step.
type progress struct {
	w     io.Writer
	now   func() time.Time
	width int
	seen  map[string]v1alpha1.WorkflowStepPhase
}

// watchRun shows the run of each event until the run finishes (returning
// it) or the watch ends (returning nil, to read the run again).
func watchRun(ctx context.Context, wi watch.Interface, key types.NamespacedName, last *v1alpha1.WorkflowRun,
	steps []v1alpha1.WorkflowStep, v runView, tick <-chan time.Time) (*v1alpha1.WorkflowRun, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick:
			v.show(last, steps)
		case ev, open := <-wi.ResultChan():
			if !open {
				return nil, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if run, ok := ev.Object.(*v1alpha1.WorkflowRun); ok {
					last = run
					if v.show(run, steps) {
						return run, nil
					}
				}
			case watch.Deleted:
				return nil, fmt.Errorf("%s was deleted before it finished", described("workflowrun", key))
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					return nil, nil
				}
				return nil, fmt.Errorf("watching %s: %w", described("workflowrun", key), err)
			}
		}
	}
}

// show prints the steps whose phase changed (runView).
func (p *progress) show(run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep) bool {
	if p.width == 0 {
		p.width = nameWidth(steps, run)
	}
	return p.update(run)
}

// update prints the steps whose phase changed and reports whether the run
// has finished. A step not yet started is not printed.
func (p *progress) update(run *v1alpha1.WorkflowRun) bool {
	show := func(s v1alpha1.StepStatus) {
		last, known := p.seen[s.Name]
		if s.Phase == "" || s.Phase == last || (!known && s.Phase == v1alpha1.WorkflowStepPhasePending) {
			return
		}
		p.seen[s.Name] = s.Phase
		at := p.now().Format("15:04:05")
		if why := reasonMessage(s); why != "" && s.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
			fmt.Fprintf(p.w, "%s  %-*s  %-10s  %s\n", at, p.width, s.Name, s.Phase, why)
			return
		}
		fmt.Fprintf(p.w, "%s  %-*s  %s\n", at, p.width, s.Name, s.Phase)
	}
	for _, s := range run.Status.Steps {
		show(s.StepStatus)
		for _, sub := range s.SubStepsStatus {
			show(sub)
		}
	}
	return run.Status.Finished
}

// outcome prints how the run ended if it succeeded (or was skipped), and
// returns runOutcome.
func (p *progress) outcome(run *v1alpha1.WorkflowRun) error {
	if err := runOutcome(run); err != nil {
		return err
	}
	fmt.Fprintf(p.w, "%s %s\n", described("workflowrun", client.ObjectKeyFromObject(run)), run.Status.Phase)
	return nil
}

// runOutcome is nil for a finished run that succeeded (or was skipped),
// and an error naming how it ended otherwise.
func runOutcome(run *v1alpha1.WorkflowRun) error {
	what := described("workflowrun", client.ObjectKeyFromObject(run))
	switch {
	case run.Status.Terminated || run.Status.Phase == v1alpha1.WorkflowRunTerminated:
		return fmt.Errorf("%s was terminated", what)
	case run.Status.Phase == v1alpha1.WorkflowRunFailed:
		if run.Status.Message != "" {
			return fmt.Errorf("%s failed: %s", what, run.Status.Message)
		}
		return fmt.Errorf("%s failed", what)
	}
	return nil
}

func reasonMessage(s v1alpha1.StepStatus) string {
	switch {
	case s.Reason != "" && s.Message != "":
		return s.Reason + ": " + s.Message
	case s.Reason != "":
		return s.Reason
	}
	return s.Message
}

// nameWidth is the width of the step name column: the longest name of the
// run's steps and sub-steps.
func nameWidth(steps []v1alpha1.WorkflowStep, run *v1alpha1.WorkflowRun) int {
	width := 12
	fit := func(name string) {
		if len(name) > width {
			width = len(name)
		}
	}
	for _, s := range steps {
		fit(s.Name)
		for _, sub := range s.SubSteps {
			fit(sub.Name)
		}
	}
	for _, s := range run.Status.Steps {
		fit(s.Name)
		for _, sub := range s.SubStepsStatus {
			fit(sub.Name)
		}
	}
	return width
}
