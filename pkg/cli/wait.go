package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// What wait waits for.
const (
	waitSucceeded = "succeeded"
	waitFinished  = "finished"
)

// waitOutcome is what one status of a run means to wait: keep waiting
// (done false), done, or done with the error that makes wait fail.
func waitOutcome(run *v1alpha1.WorkflowRun, want string) (done bool, err error) {
	if !run.Status.Finished {
		return false, nil
	}
	if want == waitFinished || run.Status.Phase == v1alpha1.WorkflowRunSucceeded {
		return true, nil
	}
	msg := fmt.Sprintf("%s finished %s, not succeeded", described("workflowrun", client.ObjectKeyFromObject(run)), phaseOf(run))
	if run.Status.Message != "" {
		msg += ": " + run.Status.Message
	}
	for _, s := range run.Status.Steps {
		if s.Phase == v1alpha1.WorkflowStepPhaseFailed {
			msg += fmt.Sprintf(" (step %s failed", s.Name)
			if s.Message != "" {
				msg += ": " + s.Message
			}
			msg += ")"
			break
		}
	}
	return true, errors.New(msg)
}

func newWaitCmd(deps Deps, g *globals) *cobra.Command {
	var (
		forState string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait RUN... [--for succeeded|finished] [--timeout D]",
		Short: "Wait until runs succeed (or, with --for finished, finish in any phase)",
		Long: `Watches the named runs until each has finished. With --for succeeded (the
default) the command exits non-zero, saying why, for each run that finished
in another phase (failed, terminated, skipped); with --for finished any phase
will do. It also exits non-zero when a run is deleted or --timeout passes
first (0, the default, waits for as long as it takes).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			if forState != waitSucceeded && forState != waitFinished {
				return fmt.Errorf("--for %q: want %s or %s", forState, waitSucceeded, waitFinished)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			w := &runWaiter{c: c, ns: g.ns(), want: forState, pending: map[string]*v1alpha1.WorkflowRun{}}
			for _, n := range names {
				w.pending[n] = nil
			}
			err = w.wait(ctx, func(run *v1alpha1.WorkflowRun) {
				fmt.Fprintf(deps.Stdout, "%s %s\n", described("workflowrun", client.ObjectKeyFromObject(run)), phaseOf(run))
			})
			if errors.Is(err, context.DeadlineExceeded) {
				return w.timedOut(timeout)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&forState, "for", waitSucceeded, "what to wait for: succeeded or finished")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (e.g. 30s, 5m); 0 waits for as long as it takes")
	return cmd
}

// runWaiter watches the runs of one namespace until none is pending.
type runWaiter struct {
	c    client.WithWatch
	ns   string
	want string
	// pending are the runs not done yet, by name, with their last status
	// seen (nil before the first).
	pending map[string]*v1alpha1.WorkflowRun
	failed  []error
}

// wait lists the runs, then watches from the list's resourceVersion; a
// watch that ends (the server closes watches now and then) is started
// again from a new list.
func (w *runWaiter) wait(ctx context.Context, done func(*v1alpha1.WorkflowRun)) error {
	for len(w.pending) > 0 {
		var list v1alpha1.WorkflowRunList
		if err := w.c.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return apiError(err, "listing workflowruns in namespace "+w.ns)
		}
		seen := map[string]bool{}
		for i := range list.Items {
			seen[list.Items[i].Name] = true
			w.observe(&list.Items[i], done)
		}
		for name := range w.pending {
			if !seen[name] {
				w.gone(name)
			}
		}
		if len(w.pending) == 0 {
			break
		}
		wi, err := w.c.Watch(ctx, &v1alpha1.WorkflowRunList{}, client.InNamespace(w.ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return apiError(err, "watching workflowruns in namespace "+w.ns)
		}
		err = w.drain(ctx, wi, done)
		wi.Stop()
		if err != nil {
			return err
		}
	}
	return errors.Join(w.failed...)
}

// drain handles a watch's events until it ends or no run is pending.
func (w *runWaiter) drain(ctx context.Context, wi watch.Interface, done func(*v1alpha1.WorkflowRun)) error {
	for len(w.pending) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil
			}
			run, isRun := ev.Object.(*v1alpha1.WorkflowRun)
			switch {
			case ev.Type == watch.Error || !isRun:
				return nil // list again
			case ev.Type == watch.Deleted:
				w.gone(run.Name)
			default:
				w.observe(run, done)
			}
		}
	}
	return nil
}

func (w *runWaiter) observe(run *v1alpha1.WorkflowRun, done func(*v1alpha1.WorkflowRun)) {
	if _, ok := w.pending[run.Name]; !ok {
		return
	}
	w.pending[run.Name] = run
	finished, err := waitOutcome(run, w.want)
	if !finished {
		return
	}
	delete(w.pending, run.Name)
	if err != nil {
		w.failed = append(w.failed, err)
		return
	}
	done(run)
}

func (w *runWaiter) gone(name string) {
	key := types.NamespacedName{Namespace: w.ns, Name: name}
	if w.pending[name] == nil {
		w.failed = append(w.failed, fmt.Errorf("%s not found", described("workflowrun", key)))
	} else {
		w.failed = append(w.failed, fmt.Errorf("%s was deleted before it finished", described("workflowrun", key)))
	}
	delete(w.pending, name)
}

// timedOut says which runs were still pending, in what phase.
func (w *runWaiter) timedOut(timeout time.Duration) error {
	errs := append([]error(nil), w.failed...)
	names := make([]string, 0, len(w.pending))
	for name := range w.pending {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		run := w.pending[name]
		key := types.NamespacedName{Namespace: w.ns, Name: name}
		phase := "not seen"
		if run != nil {
			phase = phaseOf(run)
		}
		errs = append(errs, fmt.Errorf("timed out after %s waiting for %s to be %s (it is %s)", timeout, described("workflowrun", key), w.want, phase))
	}
	return errors.Join(errs...)
}
