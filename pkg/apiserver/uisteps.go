package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// A step as the UI details it: GET /ui/api/runs/{namespace}/{name}/steps/{step}
// puts together what the controller keeps of it in four places: its
// status (the current attempt), the run's debug ConfigMap (the last
// failed attempt: controller.DebugRecord, of which only how it failed is
// shown, never the evaluated value), the run's journal (the op calls of
// the current attempt, by path and op only: never their parameters or
// results, which may hold secrets; its #Log lines with their times) and
// the step definition its type resolves to, looked up as the controller
// looks (the run's namespace, then the system namespace). .../logs
// streams the #Log lines as Server-Sent Events with logs.go's follower.

// StepDetail is GET /ui/api/runs/{namespace}/{name}/steps/{step}.
type StepDetail struct {
	Step StepNode `json:"step"`
	// Attempts are the step's attempts the controller keeps, newest
	// first: the current one (from the status) and the last failed one
	// before it (from the debug ConfigMap); none before it starts.
	Attempts []Attempt `json:"attempts"`
	// Calls are the op calls of the current attempt the journal holds.
	Calls []OpCall `json:"calls"`
	// Logs are the step's #Log lines the journal keeps, oldest first.
	Logs []LogLine `json:"logs"`
	// Definition is the step definition of its type; null for a step
	// group, or a type with none.
	Definition *DefinitionSource `json:"definition"`
}

// Attempt is one attempt of a step.
type Attempt struct {
	// Attempt is its number, 1 the first (0: not known, an attempt of
	// an earlier restart of the run).
	Attempt int32 `json:"attempt"`
	// ID is the step attempt's id (context.stepSessionID).
	ID      string `json:"id"`
	Phase   string `json:"phase"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Started and Finished are RFC 3339 times, "" when not reached or not
	// known (an earlier attempt's start is not kept; its finish is when
	// its failure was kept).
	Started  string `json:"started"`
	Finished string `json:"finished"`
}

// Op call states.
const (
	// CallReplayed is an effect that ran once in the attempt: later
	// evaluations replay its recorded result.
	CallReplayed = "replayed"
	// CallSuspended is a #Suspend of the attempt.
	CallSuspended = "suspended"
)

// OpCall is an op call of the current attempt, as the journal records
// it.
type OpCall struct {
	// Op is the kind of call ("http POST", "suspend", ...).
	Op string `json:"op"`
	// Path is its CUE path in the template.
	Path  string `json:"path"`
	State string `json:"state"`
	// Message is the op's message, or for a suspend whether it holds the
	// step or was resumed.
	Message string `json:"message"`
}

// LogLine is a #Log line of a step.
type LogLine struct {
	// Time is when it was written (RFC 3339 with milliseconds), "" when
	// the journal does not know (a line written before times were kept,
	// or the one saying how many earlier lines were dropped).
	Time string `json:"time"`
	// Level is the #Log level; the journal does not keep it: always 0.
	Level int    `json:"level"`
	Line  string `json:"line"`
}

// DefinitionSource is the step definition a step's type resolves to.
type DefinitionSource struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Source is "namespace" (the run's) or "system" (the system
	// namespace's).
	Source      string `json:"source"`
	Description string `json:"description"`
	// Template is the CUE source of the definition as stored.
	Template string `json:"template"`
}

// LogEnd is the data of the event that ends a step's log stream: the
// step's phase then, and why the stream ended when the step is not
// finished.
type LogEnd struct {
	Phase  string `json:"phase"`
	Reason string `json:"reason"`
}

// uiStep is GET /ui/api/runs/{namespace}/{name}/steps/{step}.
func (s *server) uiStep(r *http.Request, u User) (any, error) {
	ctx := r.Context()
	run, ref, steps, err := s.uiFindStep(ctx, u, r)
	if err != nil {
		return nil, err
	}
	nodes, err := stepNodes(run, steps)
	if err != nil {
		return nil, err
	}
	out := StepDetail{Attempts: []Attempt{}, Calls: []OpCall{}, Logs: []LogLine{}}
	for _, n := range nodes {
		if n.Name == ref.Name {
			out.Step = n
		}
	}
	st, _ := stepStatus(run, ref)
	rec, err := s.debugRecord(ctx, run, ref.Name)
	if err != nil {
		return nil, err
	}
	out.Attempts = attempts(run, ref.Name, st, rec)
	d, err := s.journalData(ctx, run)
	if err != nil {
		return nil, err
	}
	out.Calls = opCalls(d, st)
	for i, l := range d.Logs[ref.Name] {
		line := LogLine{Line: l}
		if at, ok := d.LogTime(ref.Name, i); ok {
			line.Time = logTime(at)
		}
		out.Logs = append(out.Logs, line)
	}
	if out.Definition, err = s.stepDefinition(ctx, run.Namespace, ref.Type); err != nil {
		return nil, err
	}
	return out, nil
}

// uiFindStep is the run and step the path names, once u may get the run.
func (s *server) uiFindStep(ctx context.Context, u User, r *http.Request) (*v1alpha1.WorkflowRun, taskRef, []v1alpha1.WorkflowStep, error) {
	run, err := s.uiFind(ctx, u, r)
	if err != nil {
		return nil, taskRef{}, nil, err
	}
	steps, _, err := runop.Steps(ctx, s.o.Client, run)
	if err != nil {
		return nil, taskRef{}, nil, fmt.Errorf("workflowrun %s/%s: its steps: %w", run.Namespace, run.Name, err)
	}
	name := chi.URLParam(r, "step")
	for _, ref := range taskRefs(steps) {
		if ref.Name == name {
			return run, ref, steps, nil
		}
	}
	return nil, taskRef{}, nil, errorf(http.StatusNotFound, "workflowrun %s/%s has no step %q", run.Namespace, run.Name, name)
}

// debugRecord is what the run's debug ConfigMap keeps of step; nil when
// nothing.
func (s *server) debugRecord(ctx context.Context, run *v1alpha1.WorkflowRun, step string) (*controller.DebugRecord, error) {
	key := types.NamespacedName{Namespace: run.Namespace, Name: controller.DebugConfigMapName(run.Name)}
	var cm corev1.ConfigMap
	err := s.o.Client.Get(ctx, key, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the debug configmap of workflowrun %s/%s: %w", run.Namespace, run.Name, err)
	}
	raw, ok := cm.Data[step]
	if !ok {
		return nil, nil
	}
	var rec controller.DebugRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("configmap %s, key %q: not a debug record: %w", key, step, err)
	}
	return &rec, nil
}

// attempts are step's attempts, newest first: the current one (st, its
// status) and, when the debug record rec is of a failed attempt before
// it, that one. The current attempt's message is the record's when the
// record is of it (longer than the status keeps, with CUE positions).
func attempts(run *v1alpha1.WorkflowRun, step string, st v1alpha1.StepStatus, rec *controller.DebugRecord) []Attempt {
	out := []Attempt{}
	if st.ID != "" {
		a := Attempt{Attempt: st.Attempt, ID: st.ID, Phase: string(st.Phase), Reason: st.Reason, Message: st.Message,
			Started: rfc3339(st.FirstExecuteTime)}
		if stepDone(st.Phase) {
			a.Finished = rfc3339(st.LastExecuteTime)
		}
		if rec != nil && rec.ID == st.ID && rec.Failure != nil && len(rec.Failure.Message) > len(a.Message) {
			a.Message = rec.Failure.Message
		}
		out = append(out, a)
	}
	if rec == nil || rec.Failure == nil || rec.ID == st.ID {
		return out
	}
	return append(out, Attempt{Attempt: attemptNumber(run, step, rec.ID, st.Attempt), ID: rec.ID,
		Phase: string(v1alpha1.WorkflowStepPhaseFailed), Reason: rec.Failure.Reason, Message: rec.Failure.Message, Finished: rec.At})
}

// attemptNumber is the number of step's attempt id: the engine names
// attempts by run, restart, step and number (engine.StepID), so it is
// found among the numbers before current, this restart first; 0 when not.
func attemptNumber(run *v1alpha1.WorkflowRun, step, id string, current int32) int32 {
	for restarts := run.Status.RestartCount; restarts >= 0; restarts-- {
		for a := max(current, 1); a >= 1; a-- {
			if engine.StepID(string(run.UID), restarts, step, a) == id {
				return a
			}
		}
	}
	return 0
}

// opCalls are the op calls of the attempt st the journal d records, by
// path, and the #Suspends its status says suspended it or were resumed.
// Only what was called and how: never the recorded results.
func opCalls(d journal.Data, st v1alpha1.StepStatus) []OpCall {
	out := []OpCall{}
	if st.ID == "" {
		return out
	}
	seen := map[string]bool{}
	for key, e := range d.Entries {
		path, ok := strings.CutPrefix(key, st.ID+"/")
		if !ok {
			continue
		}
		c := OpCall{Op: e.Op, Path: path, State: CallReplayed, Message: e.Message}
		if e.Suspended {
			c.State = CallSuspended
		}
		out = append(out, c)
		seen[path] = true
	}
	if st.SuspendedBy != "" && !seen[st.SuspendedBy] {
		out = append(out, OpCall{Op: "suspend", Path: st.SuspendedBy, State: CallSuspended, Message: "holds the step until it is resumed"})
		seen[st.SuspendedBy] = true
	}
	for _, p := range st.Resumed {
		if !seen[p] {
			out = append(out, OpCall{Op: "suspend", Path: p, State: CallSuspended, Message: "resumed"})
			seen[p] = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// logTime is a #Log line's time as the UI shows it.
func logTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// stepDefinition is the step definition typ resolves to for a run in ns,
// found where the controller looks (definition.Lookup's namespaces, in
// order); nil for a step group or a type with none.
func (s *server) stepDefinition(ctx context.Context, ns, typ string) (*DefinitionSource, error) {
	if typ == graph.StepGroup || typ == "" {
		return nil, nil
	}
	l := definition.Cluster{Reader: s.o.Client, SystemNamespace: s.o.SystemNamespace}.For(ctx, ns)
	for _, in := range l.Namespaces() {
		var def v1beta1.WorkflowStepDefinition
		err := s.o.Client.Get(ctx, types.NamespacedName{Namespace: in, Name: typ}, &def)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", definition.StepKind, in, typ, err)
		}
		src, err := definition.FromObject(&def)
		if err != nil {
			return nil, err
		}
		out := &DefinitionSource{Kind: string(definition.StepKind), Name: def.Name, Namespace: in, Source: SourceSystem,
			Description: src.Description, Template: src.Template}
		if in == ns {
			out.Source = SourceNamespace
		}
		return out, nil
	}
	return nil, nil
}

// uiStepLogs is GET /ui/api/runs/{namespace}/{name}/steps/{step}/logs[?follow=true]:
// the step's #Log lines as Server-Sent Events (event log, id the line's
// number, data a LogLine), then event end (a LogEnd). With follow, new
// lines follow as the controller saves them (logs.go's follower: a watch,
// bounded per user and in time), until the step or its run is finished.
// A client resuming with Last-Event-ID gets the lines after that one. The
// token may come as ?access_token=, as EventSource cannot set headers.
func (s *server) uiStepLogs(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("access_token"); tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	u, ok := s.authenticateTo(w, r, uiFail)
	if !ok {
		return
	}
	fail := func(err error) { uiFail(w, r, err) }
	follow := false
	if v := r.URL.Query().Get("follow"); v != "" {
		var err error
		if follow, err = strconv.ParseBool(v); err != nil {
			fail(errorf(http.StatusBadRequest, "follow %q: want true or false", v))
			return
		}
	}
	sent := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail(errorf(http.StatusBadRequest, "Last-Event-ID %q: want a line number", v))
			return
		}
		sent = n
	}
	ctx := r.Context()
	run, ref, _, err := s.uiFindStep(ctx, u, r)
	if err != nil {
		fail(err)
		return
	}
	var d journal.Data
	if follow {
		release, err := s.openStream(u)
		if err != nil {
			fail(err)
			return
		}
		defer release()
	} else if d, err = s.journalData(ctx, run); err != nil {
		fail(err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sink := uiLogSink{st: &uiStream{w: w, rc: rc}}
	if sink.st.send(": log stream of step "+ref.Name+"\n\n") != nil {
		return
	}
	end := LogEnd{}
	if follow {
		e, err := s.follow(ctx, run, ref, sent, sink)
		if err != nil {
			_ = sink.event("error", uiError{Error: err.Error()}) // the client may be gone
			return
		}
		end.Reason = e.Reason
		if e.run != nil {
			run = e.run
		}
	} else {
		dropped := d.LogsDropped[ref.Name]
		for _, l := range unsent(d.Logs[ref.Name], dropped, sent) {
			if sink.line(l.n, lineTime(d, ref.Name, dropped, l.n), l.text) != nil {
				return
			}
		}
	}
	end.Phase = string(v1alpha1.WorkflowStepPhasePending)
	if st, ok := stepStatus(run, ref); ok && st.Phase != "" {
		end.Phase = string(st.Phase)
	}
	_ = sink.event("end", end) // the client may be gone
}

// uiLogSink writes a step's log lines as the UI's events.
type uiLogSink struct{ st *uiStream }

func (k uiLogSink) line(n int, at time.Time, text string) error {
	l := LogLine{Line: text}
	if !at.IsZero() {
		l.Time = logTime(at)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encoding log line %d: %w", n, err)
	}
	return k.st.send(fmt.Sprintf("event: log\nid: %d\ndata: %s\n\n", n, b))
}

func (k uiLogSink) keepAlive() error { return k.st.send(": ping\n\n") }

func (k uiLogSink) event(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the %s event: %w", name, err)
	}
	return k.st.send(fmt.Sprintf("event: %s\ndata: %s\n\n", name, b))
}
