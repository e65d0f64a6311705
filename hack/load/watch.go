package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// maxWatchRestarts bounds how often the watch is opened again after the
// API server closed it.
const maxWatchRestarts = 50

// trace is what the harness saw of one run. The tracker's mutex guards it.
type trace struct {
	name string
	// created is when the create request was sent.
	created time.Time
	// doneSeen is when each step was first seen finished (succeeded,
	// failed or skipped).
	doneSeen map[string]time.Time
	// resumed is when the resume write returned; resumeErr why it failed.
	resumeQueued bool
	resumed      time.Time
	resumeErr    error
	// resumeSeen: the watch showed the suspend step resumed (running);
	// resumeLost: then suspending again. The harness resumes once, as a
	// person would, so such a run may never finish.
	resumeSeen, resumeLost bool
	finished               time.Time
	// updates counts the watch's MODIFIED events: status writes, mostly.
	updates int
	last    *v1alpha1.WorkflowRun
}

// tracker follows every run of the namespace through one watch, stamps
// what it sees with the time the event arrived, and resumes suspended runs.
type tracker struct {
	c        client.WithWatch
	w        workload
	resumers chan struct{}

	mu       sync.Mutex
	byName   map[string]*trace
	restarts int
	watchErr error
	// changed is signalled when a run finishes or loses its resume.
	changed chan struct{}
}

// startTracker lists the namespace and watches it from there on.
func startTracker(ctx context.Context, c client.WithWatch, w workload, parallel int) (*tracker, error) {
	t := &tracker{c: c, w: w, byName: map[string]*trace{}, resumers: make(chan struct{}, parallel), changed: make(chan struct{}, 1)}
	var list v1alpha1.WorkflowRunList
	if err := c.List(ctx, &list, client.InNamespace(w.namespace)); err != nil {
		return nil, err
	}
	go t.watch(ctx, list.ResourceVersion)
	return t, nil
}

// track starts following the runs called names; events for names not
// tracked are ignored.
func (t *tracker) track(names []string) []*trace {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*trace, len(names))
	for i, n := range names {
		tr := &trace{name: n, doneSeen: map[string]time.Time{}}
		t.byName[n] = tr
		out[i] = tr
	}
	return out
}

func (t *tracker) created(tr *trace, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr.created = at
}

// watch follows the namespace from resourceVersion rv, opening the watch
// again (from the last version seen, or after a fresh list) when the API
// server closes it.
func (t *tracker) watch(ctx context.Context, rv string) {
	for {
		w, err := t.c.Watch(ctx, &v1alpha1.WorkflowRunList{}, &client.ListOptions{Namespace: t.w.namespace,
			Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err == nil {
			rv = t.follow(w, rv)
			w.Stop()
		} else {
			rv = ""
		}
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		t.restarts++
		t.watchErr = err
		gaveUp := t.restarts > maxWatchRestarts
		t.mu.Unlock()
		if gaveUp {
			logf("the watch was closed %d times; giving up", maxWatchRestarts)
			return
		}
		if rv == "" {
			rv = t.relist(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// follow handles the events of w until it closes and returns the last
// resourceVersion seen, or "" when the watch ended with an error (the
// version is too old, say).
func (t *tracker) follow(w watch.Interface, rv string) string {
	for ev := range w.ResultChan() {
		now := time.Now()
		if ev.Type == watch.Error {
			return ""
		}
		if m, err := meta.Accessor(ev.Object); err == nil {
			rv = m.GetResourceVersion()
		}
		if run, ok := ev.Object.(*v1alpha1.WorkflowRun); ok && ev.Type != watch.Bookmark {
			t.handle(run, ev.Type, now)
		}
	}
	return rv
}

// relist lists the namespace, handles each run as an update seen now, and
// returns the list's resourceVersion.
func (t *tracker) relist(ctx context.Context) string {
	var list v1alpha1.WorkflowRunList
	if err := t.c.List(ctx, &list, client.InNamespace(t.w.namespace)); err != nil {
		return ""
	}
	now := time.Now()
	for i := range list.Items {
		t.handle(&list.Items[i], watch.Modified, now)
	}
	return list.ResourceVersion
}

// handle records what run's new state shows and queues its resume.
func (t *tracker) handle(run *v1alpha1.WorkflowRun, typ watch.EventType, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.byName[run.Name]
	if tr == nil || typ == watch.Deleted {
		return
	}
	if typ == watch.Modified {
		tr.updates++
	}
	tr.last = run
	for _, s := range run.Status.Steps {
		switch s.Phase {
		case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed, v1alpha1.WorkflowStepPhaseSkipped:
			if _, ok := tr.doneSeen[s.Name]; !ok {
				tr.doneSeen[s.Name] = now
			}
		case v1alpha1.WorkflowStepPhaseRunning:
			if s.Name == suspendStep && tr.resumeQueued {
				tr.resumeSeen = true
			}
		case v1alpha1.WorkflowStepPhaseSuspending:
			if s.Name != suspendStep {
				break
			}
			if !tr.resumeQueued {
				tr.resumeQueued = true
				go t.resume(tr, types.NamespacedName{Namespace: run.Namespace, Name: run.Name})
			} else if tr.resumeSeen && !tr.resumeLost {
				tr.resumeLost = true
			}
			t.signal()
		}
	}
	if run.Status.Finished && tr.finished.IsZero() {
		tr.finished = now
		t.signal()
	}
}

// signal wakes wait. Callers hold t.mu.
func (t *tracker) signal() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// resume resumes one run, at most -parallel at once.
func (t *tracker) resume(tr *trace, key types.NamespacedName) {
	t.resumers <- struct{}{}
	defer func() { <-t.resumers }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at, err := resume(ctx, t.c, key)
	t.mu.Lock()
	defer t.mu.Unlock()
	tr.resumed, tr.resumeErr = at, err
}

// wait waits until each of the traces' runs has finished or was suspended
// again after its resume (it may not finish by itself then; the wait ends
// once nothing has changed for stuckGrace), or until ctx ends, and returns
// how many finished.
func (t *tracker) wait(ctx context.Context, traces []*trace) int {
	for {
		finished, stuck := t.count(traces)
		if finished+stuck == len(traces) && stuck == 0 {
			return finished
		}
		var grace <-chan time.Time
		if finished+stuck == len(traces) {
			grace = time.After(stuckGrace)
		}
		select {
		case <-t.changed:
		case <-grace:
			return finished
		case <-ctx.Done():
			return finished
		}
	}
}

// stuckGrace is how long wait waits for runs suspended again after their
// resume.
const stuckGrace = 10 * time.Second

func (t *tracker) count(traces []*trace) (finished, stuck int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range traces {
		switch {
		case !tr.finished.IsZero():
			finished++
		case tr.resumeLost:
			stuck++
		}
	}
	return finished, stuck
}

// runResult is a copy of a trace, safe to read without the lock.
type runResult struct {
	name              string
	created, finished time.Time
	resumed           time.Time
	resumeErr         error
	resumeLost        bool
	doneSeen          map[string]time.Time
	updates           int
	seen              bool
	phase             v1alpha1.WorkflowRunPhase
	status            v1alpha1.WorkflowRunStatus
}

func (t *tracker) snapshot(traces []*trace) []runResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]runResult, len(traces))
	for i, tr := range traces {
		r := runResult{name: tr.name, created: tr.created, finished: tr.finished, resumed: tr.resumed,
			resumeErr: tr.resumeErr, resumeLost: tr.resumeLost, updates: tr.updates, doneSeen: map[string]time.Time{}}
		for k, v := range tr.doneSeen {
			r.doneSeen[k] = v
		}
		if tr.last != nil {
			r.seen = true
			r.phase = tr.last.Status.Phase
			r.status = *tr.last.Status.DeepCopy()
		}
		out[i] = r
	}
	return out
}

// describe says where a run stands, for errors.
func (t *tracker) describe(tr *trace) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr.last == nil {
		return "never seen by the watch"
	}
	return describeStatus(&tr.last.Status)
}

func describeStatus(st *v1alpha1.WorkflowRunStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %q", st.Phase)
	if st.Message != "" {
		fmt.Fprintf(&b, " (%s)", st.Message)
	}
	for _, s := range st.Steps {
		fmt.Fprintf(&b, "; %s %s", s.Name, s.Phase)
		if s.Reason != "" {
			fmt.Fprintf(&b, " %s", s.Reason)
		}
		if s.Message != "" {
			fmt.Fprintf(&b, ": %s", s.Message)
		}
	}
	return b.String()
}
