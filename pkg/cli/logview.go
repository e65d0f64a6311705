package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// logView prints the #Log lines of a run's journal, each once: it counts
// the lines of each step it has printed, so printing a newer journal adds
// only the lines written since.
type logView struct {
	w io.Writer
	// step, when set, is the one step printed, without the [step] prefix.
	step string
	// timestamps prefixes each line with the time it was written.
	timestamps bool
	// since, when set, leaves out lines written before it (and lines whose
	// time the journal does not know).
	since time.Time
	// printed counts, by step, the lines written so far that are printed
	// or passed over: dropped lines count, as the journal counts them.
	printed map[string]int
}

func newLogView(w io.Writer, step string, timestamps bool, since time.Time) *logView {
	return &logView{w: w, step: step, timestamps: timestamps, since: since, printed: map[string]int{}}
}

// print prints the lines of d not printed yet, steps in the order of the
// run's status, and returns how many it printed.
func (v *logView) print(run *v1alpha1.WorkflowRun, d journal.Data) int {
	n := 0
	for _, name := range logOrder(run, d.Logs) {
		if v.step != "" && name != v.step {
			continue
		}
		n += v.printStep(d, name)
	}
	return n
}

// printStep prints a step's lines not printed yet. A step whose first line
// stands for dropped ones (journal.Data.LogsDropped) has written dropped +
// its other lines; the marker is printed when lines went before this view
// printed them.
func (v *logView) printStep(d journal.Data, name string) int {
	lines, dropped := d.Logs[name], d.LogsDropped[name]
	first := 0 // index in lines of the first real line
	if dropped > 0 && len(lines) > 0 {
		first = 1
	}
	n := 0
	if first == 1 && v.printed[name] < dropped && v.line(d, name, 0) {
		n++
	}
	for i := first; i < len(lines); i++ {
		if written := dropped + i - first; written < v.printed[name] {
			continue
		}
		if v.line(d, name, i) {
			n++
		}
	}
	v.printed[name] = dropped + len(lines) - first
	return n
}

// line prints line i of a step, unless --since leaves it out.
func (v *logView) line(d journal.Data, name string, i int) bool {
	at, known := d.LogTime(name, i)
	if !v.since.IsZero() && (!known || at.Before(v.since)) {
		return false
	}
	if v.timestamps {
		stamp := "-"
		if known {
			stamp = at.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(v.w, "%s ", stamp)
	}
	if v.step == "" {
		fmt.Fprintf(v.w, "[%s] ", name)
	}
	fmt.Fprintln(v.w, d.Logs[name][i])
	return true
}

// logOrder lists the steps that have lines: in the order of the run's
// status, then the others by name.
func logOrder(run *v1alpha1.WorkflowRun, logs map[string][]string) []string {
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
	return order
}

// followLogs prints the run's new #Log lines as its journal ConfigMap
// changes, until the run finishes. It reads the run and the ConfigMap,
// then watches both from the versions read, so no line falls between; when
// the server ends a watch it reads and watches again. Once the run has
// finished it reads the ConfigMap a last time, for lines saved in the tick
// that finished it.
func followLogs(ctx context.Context, c client.WithWatch, key types.NamespacedName, v *logView) error {
	cmKey := types.NamespacedName{Namespace: key.Namespace, Name: kubestore.ContextConfigMapName(key.Name)}
	for {
		run, err := getRun(ctx, c, key)
		if err != nil {
			return err
		}
		d, cmVersion, err := readJournal(ctx, c, cmKey)
		if err != nil {
			return err
		}
		v.print(run, d)
		if run.Status.Finished {
			return nil
		}
		done, err := watchLogs(ctx, c, key, cmKey, run, cmVersion, v)
		if done || err != nil {
			return err
		}
	}
}

// readJournal reads the journal of a ConfigMap that may not exist yet, and
// returns the resourceVersion to watch it from.
func readJournal(ctx context.Context, c client.Reader, cmKey types.NamespacedName) (journal.Data, string, error) {
	var cms corev1.ConfigMapList
	err := c.List(ctx, &cms, client.InNamespace(cmKey.Namespace), client.MatchingFieldsSelector{
		Selector: fields.OneTermEqualSelector("metadata.name", cmKey.Name)})
	if err != nil {
		return journal.Data{}, "", apiError(err, described("configmap", cmKey))
	}
	if len(cms.Items) == 0 {
		return journal.Data{}, cms.ResourceVersion, nil
	}
	d, err := kubestore.Decode(&cms.Items[0])
	return d, cms.ResourceVersion, err
}

// watchLogs prints the lines of each change of the journal ConfigMap until
// the run finishes (done) or a watch ends (not done: read and watch again).
func watchLogs(ctx context.Context, c client.WithWatch, key, cmKey types.NamespacedName, run *v1alpha1.WorkflowRun, cmVersion string, v *logView) (bool, error) {
	runs, err := c.Watch(ctx, &v1alpha1.WorkflowRunList{}, &client.ListOptions{
		Namespace:     key.Namespace,
		FieldSelector: fields.OneTermEqualSelector("metadata.name", key.Name),
		Raw:           &metav1.ListOptions{ResourceVersion: run.ResourceVersion},
	})
	if err != nil {
		return false, apiError(err, "watching "+described("workflowrun", key))
	}
	defer runs.Stop()
	cms, err := c.Watch(ctx, &corev1.ConfigMapList{}, &client.ListOptions{
		Namespace:     cmKey.Namespace,
		FieldSelector: fields.OneTermEqualSelector("metadata.name", cmKey.Name),
		Raw:           &metav1.ListOptions{ResourceVersion: cmVersion},
	})
	if err != nil {
		return false, apiError(err, "watching "+described("configmap", cmKey))
	}
	defer cms.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case ev, open := <-cms.ResultChan():
			if !open {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
					d, err := kubestore.Decode(cm)
					if err != nil {
						return true, err
					}
					v.print(run, d)
				}
			case watch.Error:
				if err := watchEnded(ev, described("configmap", cmKey)); err != nil {
					return true, err
				}
				return false, nil
			}
		case ev, open := <-runs.ResultChan():
			if !open {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if r, ok := ev.Object.(*v1alpha1.WorkflowRun); ok {
					run = r
					if run.Status.Finished {
						d, _, err := readJournal(ctx, c, cmKey)
						if err != nil {
							return true, err
						}
						v.print(run, d)
						return true, nil
					}
				}
			case watch.Deleted:
				return true, fmt.Errorf("%s was deleted before it finished", described("workflowrun", key))
			case watch.Error:
				if err := watchEnded(ev, described("workflowrun", key)); err != nil {
					return true, err
				}
				return false, nil
			}
		}
	}
}

// watchEnded is nil for a watch error that only means "watch again" (the
// version watched from is too old), and the error otherwise.
func watchEnded(ev watch.Event, what string) error {
	err := apierrors.FromObject(ev.Object)
	if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
		return nil
	}
	return fmt.Errorf("watching %s: %w", what, err)
}
