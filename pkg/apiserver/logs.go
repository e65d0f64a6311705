package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// Log streams. A task's #Log lines are in its run's journal (kubestore:
// the run's context ConfigMap, the last lines of each step within the
// journal's bounds). GET .../logs answers them at once; with follow=true
// it streams them as Server-Sent Events, and the WebSocket endpoint
// streams them as text messages. Both transports share one loop
// (server.follow), which watches the run and its journal ConfigMap on the
// API server (Options.Watch) and, after each change, sends the lines it
// has not sent yet; nothing polls. A line has a number: its position
// among all the lines the step ever logged, counting those the journal's
// bounds dropped, so a client resuming an SSE stream (Last-Event-ID) gets
// only what follows. Lines dropped before they were sent are stood for by
// one line that says how many.
//
// A stream ends when the task is finished (SUCCESS, FAILURE, EXCEPTION,
// TERMINATED) or its run is, after the last lines; when the client goes
// away; when the run is deleted; and, at the latest, after
// Options.MaxFollow (DefaultMaxFollow): a stream holds two watches on the
// API server and a goroutine, and none may last without bound, nor may a
// user hold more than Options.MaxStreams (DefaultMaxStreams) at once
// (429). A
// keep-alive (an SSE comment, a WebSocket ping) every keepAlive finds a
// client that went away silently.

// DefaultMaxFollow is how long a log stream lasts at most when
// Options.MaxFollow is 0; the client reconnects for more (SSE with
// Last-Event-ID).
const DefaultMaxFollow = 30 * time.Minute

// DefaultMaxStreams is how many log streams a user may have open at once
// when Options.MaxStreams is 0.
const DefaultMaxStreams = 10

// streamCounts counts each user's open log streams; its zero value is
// ready.
type streamCounts struct {
	mu   sync.Mutex
	open map[string]int
}

// take opens a stream of user if they have fewer than max open; release
// closes it.
func (c *streamCounts) take(user string, max int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user] >= max {
		return nil, false
	}
	if c.open == nil {
		c.open = map[string]int{}
	}
	c.open[user]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.open[user]--; c.open[user] <= 0 {
			delete(c.open, user)
		}
	}, true
}

// openStream takes one of u's streams: a 501 when this server cannot
// follow, a 429 when u has their most open.
func (s *server) openStream(u User) (release func(), err error) {
	if s.o.Watch == nil {
		return nil, errorf(http.StatusNotImplemented, "this server cannot follow logs (it has no watch of the cluster); GET the logs without follow")
	}
	max := s.o.MaxStreams
	if max <= 0 {
		max = DefaultMaxStreams
	}
	release, ok := s.streams.take(u.Name, max)
	if !ok {
		return nil, errorf(http.StatusTooManyRequests, "%s has %d log streams open, the most a user may: close one first", u.Name, max)
	}
	return release, nil
}

// keepAlive is how often an idle stream tells its client it is alive.
const keepAlive = 15 * time.Second

// rewatchDelay is how long the loop waits before watching again after the
// API server ended a watch, so a watch that fails at once is not a busy
// loop.
const rewatchDelay = time.Second

// NewWatch returns the client Options.Watch wants: it watches runs and
// ConfigMaps on the API server (no cache: a stream watches one object).
func NewWatch(cfg *rest.Config) (client.WithWatch, error) {
	s, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("a client to watch log streams with: %w", err)
	}
	return c, nil
}

// routeLogs registers the log endpoints: GET
// /workflow/{instanceId}/tasks/{taskId}/logs on wf (the /workflow router)
// and the WebSocket endpoint
// /ws/workflow/{instanceId}/tasks/{taskId}/ws-logs on root.
func (s *server) routeLogs(root, wf chi.Router) {
	wf.Get("/{instanceId}/tasks/{taskId}/logs", s.logs)
	root.Get("/ws/workflow/{instanceId}/tasks/{taskId}/ws-logs", s.wsLogs)
}

// TaskLogs is what GET .../logs answers: the task's kept #Log lines,
// oldest first (the first says how many earlier ones the journal's
// bounds dropped, when it dropped some).
type TaskLogs struct {
	WorkflowInstanceID int64    `json:"workflowInstanceId"`
	TaskID             int64    `json:"taskId"`
	Name               string   `json:"name"`
	TaskStatus         string   `json:"taskStatus"`
	Lines              []string `json:"lines"`
}

// logs is GET /workflow/{instanceId}/tasks/{taskId}/logs[?follow=true].
func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	follow := false
	if v := r.URL.Query().Get("follow"); v != "" {
		var err error
		if follow, err = strconv.ParseBool(v); err != nil {
			s.out.fail(w, r, badInput("follow %q: want true or false", v))
			return
		}
	}
	run, ref, err := s.logTask(r, u)
	if err != nil {
		s.out.fail(w, r, err)
		return
	}
	if follow {
		release, err := s.openStream(u)
		if err != nil {
			s.out.fail(w, r, err)
			return
		}
		defer release()
		s.sse(w, r, run, ref)
		return
	}
	d, err := s.journal(r.Context(), run)
	if err != nil {
		s.out.fail(w, r, err)
		return
	}
	st, _ := stepStatus(run, ref)
	id, _ := app.InstanceID(run)
	s.out.ok(w, r, TaskLogs{WorkflowInstanceID: id, TaskID: ref.ID, Name: ref.Name, TaskStatus: app.TaskState(st),
		Lines: append([]string{}, d.lines[ref.Name]...)})
}

// logTask is the run and task the request names, once u may get the run.
func (s *server) logTask(r *http.Request, u User) (*v1alpha1.WorkflowRun, taskRef, error) {
	run, refs, err := s.findTasks(r, u)
	if err != nil {
		return nil, taskRef{}, err
	}
	ref, err := findTask(refs, chi.URLParam(r, "instanceId"), chi.URLParam(r, "taskId"))
	return run, ref, err
}

// stepLogs are the #Log lines of a run's steps as kept, and how many each
// step had dropped.
type stepLogs struct {
	lines   map[string][]string
	dropped map[string]int
	// data is the journal they are of (the times of the lines).
	data journal.Data
}

// journal reads run's #Log lines from its journal ConfigMap.
func (s *server) journal(ctx context.Context, run *v1alpha1.WorkflowRun) (stepLogs, error) {
	d, err := s.journalData(ctx, run)
	if err != nil {
		return stepLogs{}, err
	}
	return stepLogs{lines: d.Logs, dropped: d.LogsDropped, data: d}, nil
}

// journalData reads run's journal from its ConfigMap.
func (s *server) journalData(ctx context.Context, run *v1alpha1.WorkflowRun) (journal.Data, error) {
	if run.Status.ContextBackend == nil {
		// The run read (from the cache) may be older than the status that
		// records its journal: look for the journal anyway, a miss is no
		// lines. The store would not look, to spare the controller a
		// request known to miss.
		withJournal := *run
		withJournal.Status.ContextBackend = &corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap",
			Namespace: run.Namespace, Name: kubestore.ContextConfigMapName(run.Name)}
		run = &withJournal
	}
	d, err := kubestore.New(s.o.Client, run, nil).WithLive(s.o.Live).Load(ctx)
	if err != nil {
		return journal.Data{}, fmt.Errorf("workflowrun %s/%s: its journal: %w", run.Namespace, run.Name, err)
	}
	return d, nil
}

// logSink is where follow sends a stream: each line with its number and
// the time it was written (zero when unknown), and a keep-alive when it
// has had nothing to send for keepAlive.
type logSink interface {
	line(n int, at time.Time, text string) error
	keepAlive() error
}

// followEnd is why a stream ended: the task's status then, and, when the
// task is not finished, why not (the run finished or was deleted, the
// stream's time limit).
type followEnd struct {
	TaskStatus string `json:"taskStatus"`
	Reason     string `json:"reason,omitempty"`
	// run is the run as last seen (the UI's stream says its step's phase).
	run *v1alpha1.WorkflowRun
}

// follow sends the lines of task ref of run numbered after sent to sink,
// as the journal gets them, until the task or its run is finished (then
// after its last lines), ctx ends, the run is deleted or the stream has
// lasted maxFollow. It returns why it ended; an error is the API server's
// or the sink's.
func (s *server) follow(ctx context.Context, run *v1alpha1.WorkflowRun, ref taskRef, sent int, sink logSink) (followEnd, error) {
	limit := s.o.MaxFollow
	if limit <= 0 {
		limit = DefaultMaxFollow
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	f := &follower{s: s, run: run, ref: ref, sent: sent, sink: sink}
	for {
		end, err := f.watch(ctx)
		if err != nil {
			return followEnd{}, err
		}
		if end != nil {
			end.run = f.run
			return *end, nil
		}
		select {
		case <-ctx.Done():
			end := f.ended(ctx)
			end.run = f.run
			return end, nil
		case <-time.After(rewatchDelay):
		}
	}
}

// follower is the state of one stream.
type follower struct {
	s    *server
	run  *v1alpha1.WorkflowRun
	ref  taskRef
	sent int
	sink logSink
}

// watch watches the run and its journal ConfigMap, and sends the new lines
// after each change, until the stream ends (non-nil) or one of the
// watches does (nil, nil: watch again).
func (f *follower) watch(ctx context.Context) (*followEnd, error) {
	ns, name := f.run.Namespace, f.run.Name
	// The watches start before the reads, so no change after the reads
	// is missed.
	runs, err := f.s.o.Watch.Watch(ctx, &v1alpha1.WorkflowRunList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return f.failed(ctx, fmt.Errorf("watching workflowrun %s/%s: %w", ns, name, err))
	}
	defer runs.Stop()
	cms, err := f.s.o.Watch.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns),
		client.MatchingFields{"metadata.name": kubestore.ContextConfigMapName(name)})
	if err != nil {
		return f.failed(ctx, fmt.Errorf("watching the journal of workflowrun %s/%s: %w", ns, name, err))
	}
	defer cms.Stop()

	var run v1alpha1.WorkflowRun
	err = f.s.o.Live.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &run)
	if apierrors.IsNotFound(err) {
		return &followEnd{TaskStatus: app.TaskTerminated, Reason: "the run was deleted"}, nil
	}
	if err != nil {
		return f.failed(ctx, fmt.Errorf("reading workflowrun %s/%s: %w", ns, name, err))
	}
	f.run = &run
	beat := time.NewTicker(keepAlive)
	defer beat.Stop()
	changed := true
	for {
		if changed {
			if end, err := f.send(ctx); end != nil || err != nil {
				return end, err
			}
			beat.Reset(keepAlive)
		}
		changed = true
		select {
		case <-ctx.Done():
			end := f.ended(ctx)
			return &end, nil
		case <-beat.C:
			if err := f.sink.keepAlive(); err != nil {
				return f.failed(ctx, err)
			}
			changed = false
		case ev, ok := <-runs.ResultChan():
			if !ok {
				return nil, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return &followEnd{TaskStatus: app.TaskTerminated, Reason: "the run was deleted"}, nil
			case watch.Error:
				return nil, nil
			}
			if r, ok := ev.Object.(*v1alpha1.WorkflowRun); ok {
				f.run = r
			}
		case ev, ok := <-cms.ResultChan():
			if !ok || ev.Type == watch.Error {
				return nil, nil
			}
		}
	}
}

// send sends the lines not sent yet; non-nil once the task or its run is
// finished. The journal is written before the status that finishes a
// step, so the lines read after a finished status are all of them.
func (f *follower) send(ctx context.Context) (*followEnd, error) {
	run := f.run
	st, _ := stepStatus(run, f.ref)
	status := app.TaskState(st)
	d, err := f.s.journal(ctx, run)
	if err != nil {
		return f.failed(ctx, err)
	}
	dropped := d.dropped[f.ref.Name]
	for _, l := range unsent(d.lines[f.ref.Name], dropped, f.sent) {
		if err := f.sink.line(l.n, lineTime(d.data, f.ref.Name, dropped, l.n), l.text); err != nil {
			return f.failed(ctx, err)
		}
		f.sent = l.n
	}
	switch inst := app.InstanceState(run); {
	case finishedTask(status):
		return &followEnd{TaskStatus: status}, nil
	case finishedInstance(inst):
		return &followEnd{TaskStatus: status, Reason: "the instance is " + inst}, nil
	}
	return nil, nil
}

// numbered is a log line with its number: its position among all the
// lines the step logged, 1 the first.
type numbered struct {
	n    int
	text string
}

// unsent are the lines of a step's log numbered after sent, given its
// kept lines and how many the journal dropped (the first kept line then
// says so and is not one of the step's). Lines dropped before they were
// sent are stood for by one line numbered as the last of them. When the
// log has fewer lines than were sent, it started over (the journal lost
// it): all of it is unsent.
func unsent(kept []string, dropped, sent int) []numbered {
	if dropped > 0 && len(kept) > 0 {
		kept = kept[1:]
	}
	if dropped+len(kept) < sent {
		sent = 0
	}
	var out []numbered
	if dropped > sent {
		out = append(out, numbered{dropped, fmt.Sprintf("… %d lines dropped before they were sent (log bound)", dropped-sent)})
		sent = dropped
	}
	for i, l := range kept {
		if n := dropped + i + 1; n > sent {
			out = append(out, numbered{n, l})
		}
	}
	return out
}

// lineTime is when line n (numbered as unsent numbers it) of step was
// written; zero when the journal does not know, or for the line that
// stands for dropped ones.
func lineTime(d journal.Data, step string, dropped, n int) time.Time {
	i := n - dropped - 1
	if dropped > 0 {
		i++ // the kept lines start with the one saying how many were dropped
	}
	if n <= dropped {
		return time.Time{}
	}
	at, _ := d.LogTime(step, i)
	return at
}

// ended is why a stream ends once ctx is done: the stream's time limit,
// or the client went away.
func (f *follower) ended(ctx context.Context) followEnd {
	st, _ := stepStatus(f.run, f.ref)
	end := followEnd{TaskStatus: app.TaskState(st), Reason: "the client went away"}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		end.Reason = "the stream lasted its limit; follow again for more"
	}
	return end
}

// failed is err, or the stream's end when err came of ctx ending.
func (f *follower) failed(ctx context.Context, err error) (*followEnd, error) {
	end := f.ended(ctx)
	if ctx.Err() != nil {
		return &end, nil
	}
	return &end, err
}

// finishedInstance reports whether an instance in state status will run
// no step again unless retried.
func finishedInstance(status string) bool {
	switch status {
	case app.InstanceSuccess, app.InstanceFailure, app.InstanceException, app.InstanceTerminated:
		return true
	}
	return false
}

// sse streams a task's lines as Server-Sent Events: each line an event
// whose id is its number (a line with newlines is several data fields, as
// SSE joins them), a comment as keep-alive, then an "end" event whose data
// is the followEnd as JSON, or an "error" event. A client resuming with
// Last-Event-ID gets the lines after that one.
func (s *server) sse(w http.ResponseWriter, r *http.Request, run *v1alpha1.WorkflowRun, ref taskRef) {
	sent := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.out.fail(w, r, badInput("Last-Event-ID %q: want a line number", v))
			return
		}
		sent = n
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to buffer
	w.WriteHeader(http.StatusOK)
	sink := &sseSink{w: w, rc: rc}
	if err := rc.Flush(); err != nil {
		return
	}
	end, err := s.follow(r.Context(), run, ref, sent, sink)
	if err != nil {
		_ = sink.event("error", err.Error()) // the client may be gone
		return
	}
	b, _ := json.Marshal(end) // strings only: cannot fail
	_ = sink.event("end", string(b))
}

type sseSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (k *sseSink) line(n int, _ time.Time, text string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %d\n", n)
	writeData(&b, text)
	return k.write(b.String())
}

func (k *sseSink) keepAlive() error { return k.write(": keep-alive\n\n") }

func (k *sseSink) event(name, data string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "event: %s\n", name)
	writeData(&b, data)
	return k.write(b.String())
}

// writeData writes text as an event's data fields and ends the event.
func writeData(b *strings.Builder, text string) {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(b, "data: %s\n", l)
	}
	b.WriteString("\n")
}

// write writes s and flushes it; a client that reads nothing for
// keepAlive*2 fails the write.
func (k *sseSink) write(s string) error {
	_ = k.rc.SetWriteDeadline(time.Now().Add(2 * keepAlive)) // not every writer has deadlines
	if _, err := k.w.Write([]byte(s)); err != nil {
		return err
	}
	return k.rc.Flush()
}

// wsLogs is GET /ws/workflow/{instanceId}/tasks/{taskId}/ws-logs, the
// WebSocket form of following a task's logs (SREWorks'
// /ws/workflow/{taskId}/ws-logs, which names no instance): a text
// message per line, a ping as keep-alive, then a close with status 1000
// (normal) and the followEnd as JSON for reason when the stream ends, or
// 1011 (internal error) and the error. A browser cannot set the
// Authorization header on a WebSocket, so here, and only here, the token
// may also come as ?access_token=TOKEN; it then appears in URLs, which
// proxies may log: prefer the header where the client can set it. Before
// the upgrade, errors are envelopes as everywhere. An upgrade from a page
// of another origin is refused (coder/websocket's Origin check): the UI is
// served by this server.
func (s *server) wsLogs(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("access_token"); tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	u, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	run, ref, err := s.logTask(r, u)
	if err != nil {
		s.out.fail(w, r, err)
		return
	}
	release, err := s.openStream(u)
	if err != nil {
		s.out.fail(w, r, err)
		return
	}
	defer release()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the client
	}
	defer c.CloseNow()
	// Nothing is read from the client; CloseRead answers its pings and
	// close, and ends ctx when it goes away.
	ctx := c.CloseRead(r.Context())
	end, err := s.follow(ctx, run, ref, 0, wsSink{ctx: ctx, c: c})
	if err != nil {
		_ = c.Close(websocket.StatusInternalError, closeReason(err.Error()))
		return
	}
	b, _ := json.Marshal(end) // strings only: cannot fail
	_ = c.Close(websocket.StatusNormalClosure, closeReason(string(b)))
}

type wsSink struct {
	ctx context.Context
	c   *websocket.Conn
}

func (k wsSink) line(_ int, _ time.Time, text string) error {
	return k.c.Write(k.ctx, websocket.MessageText, []byte(text))
}

func (k wsSink) keepAlive() error {
	ctx, cancel := context.WithTimeout(k.ctx, keepAlive)
	defer cancel()
	return k.c.Ping(ctx)
}

// closeReason is s cut to the 123 bytes a close frame's reason may hold.
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	cut := 120
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
