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
// finishes, and fails unless it succeeded. It reads the run, then watches
// it from that resourceVersion, so no change falls between the two; when
// the server ends the watch it reads and watches again.
func follow(ctx context.Context, w io.Writer, c client.WithWatch, key types.NamespacedName, now func() time.Time) error {
	p := &progress{w: w, now: now, seen: map[string]v1alpha1.WorkflowStepPhase{}}
	for {
		run, err := getRun(ctx, c, key)
		if err != nil {
			return err
		}
		if p.width == 0 {
			p.width = nameWidth(ctx, c, run)
		}
		if p.update(run) {
			return p.outcome(run)
		}
		wi, err := c.Watch(ctx, &v1alpha1.WorkflowRunList{}, &client.ListOptions{
			Namespace:     key.Namespace,
			FieldSelector: fields.OneTermEqualSelector("metadata.name", key.Name),
			Raw:           &metav1.ListOptions{ResourceVersion: run.ResourceVersion},
		})
		if err != nil {
			return apiError(err, "watching "+described("workflowrun", key))
		}
		run, err = p.watch(ctx, wi, key)
		wi.Stop()
		if err != nil {
			return err
		}
		if run != nil {
			return p.outcome(run)
		}
	}
}

// progress remembers the phase last printed for each step.
type progress struct {
	w     io.Writer
	now   func() time.Time
	width int
	seen  map[string]v1alpha1.WorkflowStepPhase
}

// watch reads events until the run finishes (returning it) or the watch
// ends (returning nil, to read the run again).
func (p *progress) watch(ctx context.Context, wi watch.Interface, key types.NamespacedName) (*v1alpha1.WorkflowRun, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, open := <-wi.ResultChan():
			if !open {
				return nil, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if run, ok := ev.Object.(*v1alpha1.WorkflowRun); ok && p.update(run) {
					return run, nil
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

// outcome is nil for a run that succeeded (or was skipped), and an error
// naming how it ended otherwise.
func (p *progress) outcome(run *v1alpha1.WorkflowRun) error {
	what := described("workflowrun", types.NamespacedName{Namespace: run.Namespace, Name: run.Name})
	switch {
	case run.Status.Terminated || run.Status.Phase == v1alpha1.WorkflowRunTerminated:
		return fmt.Errorf("%s was terminated", what)
	case run.Status.Phase == v1alpha1.WorkflowRunFailed:
		if run.Status.Message != "" {
			return fmt.Errorf("%s failed: %s", what, run.Status.Message)
		}
		return fmt.Errorf("%s failed", what)
	}
	fmt.Fprintf(p.w, "%s %s\n", what, run.Status.Phase)
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
func nameWidth(ctx context.Context, c client.Reader, run *v1alpha1.WorkflowRun) int {
	width := 12
	fit := func(name string) {
		if len(name) > width {
			width = len(name)
		}
	}
	steps, _, _ := runSteps(ctx, c, run) // the status names the steps too
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
