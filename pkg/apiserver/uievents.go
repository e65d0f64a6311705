package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// GET /ui/api/events: the runs the UI shows, live, as Server-Sent Events.
//
// Each stream registers its own event handler on the informer of runs
// (Options.Runs, the server's cache) and removes it when the stream ends;
// nothing polls. The informer first replays every run it holds to a new
// handler, so a stream starts with one run event per matching run as it
// is now, then follows each add, change (event run, the RunSummary, id the
// resourceVersion) and deletion (event deleted, {namespace, name}). A
// comment (": ping") every Options.UIPing keeps proxies from closing an
// idle stream and finds a client that went away.
//
// The handler never blocks the informer: it only queues what it was told
// (the replay in a list as long as the cache, later events in a queue of
// at most Options.UIEventBuffer), and the stream's own goroutine writes.
// A client that reads too slowly for its queue is dropped: its queue
// overflows, the stream's pending write is cut short and the stream ends
// (an EventSource reconnects, and starts again from the runs as they
// are). Events are filtered by namespace and run before they are queued;
// whether the caller may see a namespace is asked (and kept for the
// stream) when its first event is written.

// Defaults of the event stream.
const (
	DefaultUIPing        = 15 * time.Second
	DefaultUIEventBuffer = 256
	// uiWriteTimeout bounds one write to a stream: a client that takes
	// longer is gone.
	uiWriteTimeout = 30 * time.Second
)

// RunInformer is what the event stream needs of the cache's informer of
// WorkflowRuns (controller-runtime's cache.Informer has it).
type RunInformer interface {
	AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
	RemoveEventHandler(toolscache.ResourceEventHandlerRegistration) error
}

// runEvent is a run changed (run set) or deleted (gone set).
type runEvent struct {
	run  *v1alpha1.WorkflowRun
	gone *v1alpha1.WorkflowRun
}

// subscriber is one stream's event handler: it queues, the stream
// writes. The informer hands out its own copies: never changed here.
type subscriber struct {
	filter runFilter
	max    int
	// onDrop cuts the stream's pending write short.
	onDrop func()

	mu      sync.Mutex
	initial []runEvent
	queue   []runEvent
	dropped bool
	wake    chan struct{}
}

var _ toolscache.ResourceEventHandler = (*subscriber)(nil)

func newSubscriber(f runFilter, max int, onDrop func()) *subscriber {
	return &subscriber{filter: f, max: max, onDrop: onDrop, wake: make(chan struct{}, 1)}
}

func (b *subscriber) OnAdd(obj any, isInInitialList bool) {
	if run, ok := obj.(*v1alpha1.WorkflowRun); ok && b.filter.matches(run) {
		b.push(runEvent{run: run}, isInInitialList)
	}
}

func (b *subscriber) OnUpdate(oldObj, newObj any) {
	run, ok := newObj.(*v1alpha1.WorkflowRun)
	if !ok || !b.filter.matches(run) {
		return
	}
	if old, ok := oldObj.(*v1alpha1.WorkflowRun); ok && old.ResourceVersion == run.ResourceVersion {
		return // a resync: nothing changed
	}
	b.push(runEvent{run: run}, false)
}

func (b *subscriber) OnDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if run, ok := obj.(*v1alpha1.WorkflowRun); ok && b.filter.matches(run) {
		b.push(runEvent{gone: run}, false)
	}
}

// push queues e without blocking; a full queue drops the stream.
func (b *subscriber) push(e runEvent, initial bool) {
	b.mu.Lock()
	switch {
	case b.dropped:
	case initial:
		b.initial = append(b.initial, e)
	case len(b.queue) >= b.max:
		b.dropped = true
		b.queue = nil
		b.onDrop()
	default:
		b.queue = append(b.queue, e)
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take is what was queued since the last take, and whether the stream was
// dropped.
func (b *subscriber) take() ([]runEvent, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append(b.initial, b.queue...)
	b.initial, b.queue = nil, nil
	return out, b.dropped
}

// uiEvents is GET /ui/api/events?namespace=&run=&app=&category=&phase=&label=.
// The token may come as ?access_token=, as EventSource cannot set headers.
func (s *server) uiEvents(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("access_token"); tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	u, ok := s.authenticateTo(w, r, uiFail)
	if !ok {
		return
	}
	if s.o.Runs == nil {
		uiFail(w, r, errorf(http.StatusNotImplemented, "this server has no informer of workflowruns to stream events from"))
		return
	}
	f, err := parseRunFilter(r, true)
	if err != nil {
		uiFail(w, r, err)
		return
	}
	ctx := r.Context()
	verb := "list"
	if f.namespace != "" && f.name != "" {
		verb = "get"
	}
	ns, err := s.readable(ctx, u, verb, f.namespace)
	if err != nil {
		uiFail(w, r, err)
		return
	}
	// A user's event streams are bounded in number and each in time as
	// their log streams are (their own count): a stream ends after
	// MaxFollow, and the reconnect is authorized afresh.
	maxStreams := s.o.MaxStreams
	if maxStreams <= 0 {
		maxStreams = DefaultMaxStreams
	}
	release, ok := s.streams.take("\x00events\x00"+u.Name, maxStreams) // no user name starts with NUL
	if !ok {
		uiFail(w, r, errorf(http.StatusTooManyRequests, "%s has %d event streams open, the most a user may: close one first", u.Name, maxStreams))
		return
	}
	defer release()
	maxFollow := s.o.MaxFollow
	if maxFollow <= 0 {
		maxFollow = DefaultMaxFollow
	}
	end := time.NewTimer(maxFollow)
	defer end.Stop()
	rc := http.NewResponseController(w)
	max := s.o.UIEventBuffer
	if max <= 0 {
		max = DefaultUIEventBuffer
	}
	sub := newSubscriber(f, max, func() { _ = rc.SetWriteDeadline(time.Now()) })
	reg, err := s.o.Runs.AddEventHandler(sub)
	if err != nil {
		uiFail(w, r, fmt.Errorf("watching workflowruns for %s: %w", u.Name, err))
		return
	}
	defer func() { _ = s.o.Runs.RemoveEventHandler(reg) }() // idempotent; an error leaves nothing to do

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	st := &uiStream{w: w, rc: rc}
	if st.send(": stream of workflowrun events\n\n") != nil {
		return
	}
	ping := s.o.UIPing
	if ping <= 0 {
		ping = DefaultUIPing
	}
	ticker := time.NewTicker(ping)
	defer ticker.Stop()
	totals := s.stepTotals(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			_ = st.send(fmt.Sprintf("event: end\ndata: {\"reason\":\"the stream lasted %s, the most a stream may; reconnect\"}\n\n", maxFollow))
			return
		case <-ticker.C:
			if st.send(": ping\n\n") != nil {
				return
			}
		case <-sub.wake:
			events, dropped := sub.take()
			if dropped {
				_ = st.send("event: dropped\ndata: {\"error\":\"the client read events too slowly; reconnect\"}\n\n")
				return
			}
			var b strings.Builder
			for _, e := range events {
				if err := s.writeEvent(ctx, &b, ns, totals, e); err != nil {
					data, _ := json.Marshal(uiError{Error: err.Error()}) // a string: cannot fail
					fmt.Fprintf(&b, "event: error\ndata: %s\n\n", data)
					_ = st.send(b.String())
					return
				}
			}
			if b.Len() > 0 && st.send(b.String()) != nil {
				return
			}
		}
	}
}

// writeEvent adds e to b as an event, if the caller may see its
// namespace.
func (s *server) writeEvent(ctx context.Context, b *strings.Builder, ns *namespaces, totals func(*v1alpha1.WorkflowRun) int, e runEvent) error {
	run := e.run
	if run == nil {
		run = e.gone
	}
	ok, err := ns.allows(ctx, run.Namespace)
	if err != nil || !ok {
		return err
	}
	if e.gone != nil {
		data, err := json.Marshal(map[string]string{"namespace": run.Namespace, "name": run.Name})
		if err != nil {
			return fmt.Errorf("encoding the deletion of workflowrun %s/%s: %w", run.Namespace, run.Name, err)
		}
		fmt.Fprintf(b, "event: deleted\ndata: %s\n\n", data)
		return nil
	}
	data, err := json.Marshal(runSummary(run, totals(run), s.o.Now()))
	if err != nil {
		return fmt.Errorf("encoding workflowrun %s/%s: %w", run.Namespace, run.Name, err)
	}
	fmt.Fprintf(b, "event: run\nid: %s\ndata: %s\n\n", run.ResourceVersion, data)
	return nil
}

// uiStream writes to an event stream, each write bounded in time and
// flushed.
type uiStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (st *uiStream) send(text string) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(uiWriteTimeout)) // a server without deadlines: the write is unbounded
	if _, err := st.w.Write([]byte(text)); err != nil {
		return err
	}
	return st.rc.Flush()
}

// NewRunInformer is the informer of WorkflowRuns of c's cache (NewCluster
// registered it), for Options.Runs.
func NewRunInformer(ctx context.Context, c cluster.Cluster) (RunInformer, error) {
	inf, err := c.GetCache().GetInformer(ctx, &v1alpha1.WorkflowRun{})
	if err != nil {
		return nil, fmt.Errorf("the informer of workflowruns: %w", err)
	}
	return inf, nil
}
