package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// The UI's own API, under /ui/api (the contract: docs/ui.md). Unlike
// /workflow it has no SREWorks envelope: a success is its JSON, an error
// its HTTP status and {"error": "message"}. Authentication, the rate
// limit and authorization are /workflow's: get or list of workflowruns in
// the run's namespace. A list or event stream without a namespace shows
// the runs of every namespace the caller may list. Runs are read from the
// server's cache; the event stream (uievents.go) is fed by the cache's
// informer of runs.

// RunSummary is a run as the UI lists it.
type RunSummary struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Phase is the run's status phase; "pending" before the controller
	// first wrote one.
	Phase    string            `json:"phase"`
	AppID    string            `json:"appId"`
	Category string            `json:"category"`
	Labels   map[string]string `json:"labels"`
	// Created, Started and Finished are RFC 3339 times, "" while not
	// reached.
	Created  string `json:"created"`
	Started  string `json:"started"`
	Finished string `json:"finished"`
	// DurationSeconds is from its start to its end, to now while it runs;
	// 0 before it starts.
	DurationSeconds float64 `json:"durationSeconds"`
	// Progress is "finished/total" over the top-level steps.
	Progress string `json:"progress"`
	// WaitingOn names the step (or sub-step) an unfinished run waits on:
	// a suspended one, else a running one; "" when none.
	WaitingOn       string `json:"waitingOn"`
	Message         string `json:"message"`
	ResourceVersion string `json:"resourceVersion"`
}

// RunList is GET /ui/api/runs.
type RunList struct {
	Items []RunSummary `json:"items"`
}

// RunDetail is GET /ui/api/runs/{namespace}/{name}.
type RunDetail struct {
	Run   RunSummary `json:"run"`
	Steps []StepNode `json:"steps"`
	Edges []Edge     `json:"edges"`
	// Context is the run's context as its steps see it (spec.context and
	// the variables set while it runs).
	Context map[string]any `json:"context"`
	// Actions are the operations the run allows now (uiactions.go).
	Actions Actions `json:"actions"`
}

// StepNode is a step or sub-step of a run: its spec with its status
// merged in.
type StepNode struct {
	// ID is the status entry's id; the name until the step started.
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	// Parent is the step group of a sub-step, "" for a top-level step.
	Parent string `json:"parent"`
	// Phase is the status phase; "pending" until the step starts.
	Phase   string `json:"phase"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Started and Finished are RFC 3339 times, "" while not reached.
	Started  string `json:"started"`
	Finished string `json:"finished"`
	Attempt  int32  `json:"attempt"`
	// DependsOn are the steps its spec names in dependsOn.
	DependsOn []string `json:"dependsOn"`
	// Inputs are the outputs it reads (by name, with the value its last
	// attempt had, null before); Outputs those it exports (null until it
	// succeeded).
	Inputs     []NamedValue   `json:"inputs"`
	Outputs    []NamedValue   `json:"outputs"`
	Properties map[string]any `json:"properties"`
}

// NamedValue is a step's input or output.
type NamedValue struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Edge kinds: a step waits for another because its dependsOn names it,
// because it reads an output the other produces (or a sub-step of it
// does), or because the steps run one by one (StepByStep).
const (
	EdgeDependsOn = "dependsOn"
	EdgeInput     = "input"
	EdgeOrder     = "order"
)

// Edge says that To waits for From; one edge a pair, of the first kind
// that applies: dependsOn, input, order.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
}

// uiError is the body of an error of the UI's API.
type uiError struct {
	Error string `json:"error"`
}

// routeUI registers the UI's API under /ui/api.
func (s *server) routeUI(ui chi.Router) {
	ui.Get("/runs", s.uiHandle(s.uiRuns))
	ui.Get("/runs/{namespace}/{name}", s.uiHandle(s.uiRun))
	ui.Get("/events", s.uiEvents)
	ui.Post("/runs/{namespace}/{name}/actions/{verb}", s.uiHandle(s.uiAction))
	ui.Get("/runs/{namespace}/{name}/steps/{step}", s.uiHandle(s.uiStep))
	ui.Get("/runs/{namespace}/{name}/steps/{step}/logs", s.uiStepLogs)
	ui.Get("/definitions", s.uiHandle(s.uiDefinitions))
	ui.Get("/workflows", s.uiHandle(s.uiWorkflows))
	ui.Post("/runs", s.uiHandleStatus(http.StatusCreated, s.uiLaunch))
	ui.Get("/apps/{namespace}/{appId}/deploys", s.uiHandle(s.uiDeploys))
	ui.NotFound(func(w http.ResponseWriter, r *http.Request) {
		uiFail(w, r, errorf(http.StatusNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
}

// uiHandle is handle for the UI's API: the same authentication and rate
// limit, answers without the envelope.
func (s *server) uiHandle(f call) http.HandlerFunc { return s.uiHandleStatus(http.StatusOK, f) }

// uiHandleStatus is uiHandle answering a success with status.
func (s *server) uiHandleStatus(status int, f call) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.authenticateTo(w, r, uiFail)
		if !ok {
			return
		}
		data, err := f(r, u)
		if err != nil {
			uiFail(w, r, err)
			return
		}
		writeJSON(w, status, data)
	}
}

// uiFail answers err as the UI's API does: its status (asError) and
// {"error": message}.
func uiFail(w http.ResponseWriter, _ *http.Request, err error) {
	e := asError(err)
	writeJSON(w, e.Status, uiError{Error: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(uiError{Error: fmt.Sprintf("encoding the response: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client went away; nothing to tell it
}

// runFilter is what the list and the event stream select runs by.
type runFilter struct {
	namespace, name string
	// appID and category are label values (app.LabelValue), rawAppID
	// the app id asked for, checked against the annotation too (a hashed
	// label may collide).
	appID, rawAppID, category string
	phase                     string
	selector                  labels.Selector
}

// parseRunFilter reads namespace, app, category, phase, label and (with
// run) run from the query.
func parseRunFilter(r *http.Request, withRun bool) (runFilter, error) {
	q := r.URL.Query()
	f := runFilter{namespace: q.Get("namespace"), rawAppID: q.Get("app"), category: q.Get("category"),
		phase: q.Get("phase"), selector: labels.Everything()}
	if f.namespace != "" {
		if errs := validation.IsDNS1123Label(f.namespace); len(errs) > 0 {
			return f, errorf(http.StatusBadRequest, "namespace %q: %s", f.namespace, strings.Join(errs, "; "))
		}
	}
	if f.rawAppID != "" {
		f.appID = app.LabelValue(f.rawAppID)
	}
	if f.category != "" {
		f.category = app.LabelValue(f.category)
	}
	if v := q.Get("label"); v != "" {
		sel, err := labels.Parse(v)
		if err != nil {
			return f, errorf(http.StatusBadRequest, "label %q: %v", v, err)
		}
		f.selector = sel
	}
	if withRun {
		f.name = q.Get("run")
	}
	return f, nil
}

// matches reports whether run passes f.
func (f runFilter) matches(run *v1alpha1.WorkflowRun) bool {
	l := labels.Set(run.Labels)
	switch {
	case f.namespace != "" && run.Namespace != f.namespace,
		f.name != "" && run.Name != f.name,
		f.appID != "" && (l[app.LabelAppID] != f.appID || rawAppIDDiffers(run, f.rawAppID)),
		f.category != "" && l[app.LabelCategory] != f.category,
		f.phase != "" && runPhase(run) != f.phase,
		!f.selector.Matches(l):
		return false
	}
	return true
}

// namespaces says which namespaces u may read runs of with verb, asking
// once a namespace: all of them when u may verb workflowruns in every
// namespace. Not safe for concurrent use.
type namespaces struct {
	s    *server
	u    User
	verb string
	all  bool
	seen map[string]error
}

// readable is the namespaces u may read runs of with verb: one namespace
// (a 403 when u may not), or with ns "" every one u may.
func (s *server) readable(ctx context.Context, u User, verb, ns string) (*namespaces, error) {
	n := &namespaces{s: s, u: u, verb: verb, seen: map[string]error{}}
	if ns != "" {
		if err := s.o.Auth.Authorize(ctx, u, Access{Verb: verb, Namespace: ns}); err != nil {
			return nil, err
		}
		n.seen[ns] = nil
		return n, nil
	}
	err := s.o.Auth.Authorize(ctx, u, Access{Verb: verb})
	if err == nil {
		n.all = true
		return n, nil
	}
	if !forbidden(err) {
		return nil, err
	}
	return n, nil
}

// allows reports whether u may read runs in ns; an error is a review that
// could not be made.
func (n *namespaces) allows(ctx context.Context, ns string) (bool, error) {
	if n.all {
		return true, nil
	}
	err, ok := n.seen[ns]
	if !ok {
		err = n.s.o.Auth.Authorize(ctx, n.u, Access{Verb: n.verb, Namespace: ns})
		if err != nil && !forbidden(err) {
			return false, err
		}
		n.seen[ns] = err
	}
	return err == nil, nil
}

func forbidden(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusForbidden
}

// uiRuns is GET /ui/api/runs: the runs f selects that the caller may
// list, newest first.
func (s *server) uiRuns(r *http.Request, u User) (any, error) {
	f, err := parseRunFilter(r, false)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	ns, err := s.readable(ctx, u, "list", f.namespace)
	if err != nil {
		return nil, err
	}
	opts := []client.ListOption{client.UnsafeDisableDeepCopy, client.MatchingLabelsSelector{Selector: f.selector}}
	if f.namespace != "" {
		opts = append(opts, client.InNamespace(f.namespace))
	}
	if f.appID != "" {
		opts = append(opts, client.MatchingFields{indexAppID: f.appID})
	}
	var runs v1alpha1.WorkflowRunList
	if err := s.o.Client.List(ctx, &runs, opts...); err != nil {
		return nil, fmt.Errorf("listing workflowruns in %s: %w", nsName(f.namespace), err)
	}
	var items []*v1alpha1.WorkflowRun
	for i := range runs.Items {
		run := &runs.Items[i]
		if !f.matches(run) {
			continue
		}
		ok, err := ns.allows(ctx, run.Namespace)
		if err != nil {
			return nil, err
		}
		if ok {
			items = append(items, run)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.After(b.CreationTimestamp.Time)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name > b.Name
	})
	totals := s.stepTotals(ctx)
	out := RunList{Items: make([]RunSummary, 0, len(items))}
	for _, run := range items {
		out.Items = append(out.Items, runSummary(run, totals(run), s.o.Now()))
	}
	return out, nil
}

func nsName(ns string) string {
	if ns == "" {
		return "every namespace"
	}
	return "namespace " + ns
}

// uiFind is the run the path names, once u may get it (from the cache).
func (s *server) uiFind(ctx context.Context, u User, r *http.Request) (*v1alpha1.WorkflowRun, error) {
	key := types.NamespacedName{Namespace: chi.URLParam(r, "namespace"), Name: chi.URLParam(r, "name")}
	if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "get", Namespace: key.Namespace}); err != nil {
		return nil, err
	}
	var run v1alpha1.WorkflowRun
	if err := s.o.Client.Get(ctx, key, &run); err != nil {
		return nil, fmt.Errorf("workflowrun %s: %w", key, err)
	}
	return &run, nil
}

// uiRun is GET /ui/api/runs/{namespace}/{name}: the run, its steps with
// their status and the edges between them, and its context.
func (s *server) uiRun(r *http.Request, u User) (any, error) {
	ctx := r.Context()
	run, err := s.uiFind(ctx, u, r)
	if err != nil {
		return nil, err
	}
	key := client.ObjectKeyFromObject(run)
	steps, mode, err := runop.Steps(ctx, s.o.Client, run)
	if err != nil {
		return nil, fmt.Errorf("workflowrun %s: its steps: %w", key, err)
	}
	vars, err := runContext(ctx, s.o.Client, run)
	if err != nil {
		return nil, err
	}
	nodes, err := stepNodes(run, steps)
	if err != nil {
		return nil, err
	}
	return RunDetail{
		Run:     runSummary(run, len(steps), s.o.Now()),
		Steps:   nodes,
		Edges:   stepEdges(steps, mode),
		Context: vars,
		Actions: s.actionsOf(ctx, u, run, steps),
	}, nil
}

// stepTotals is how many top-level steps a run has: its spec's, or its
// Workflow's (each Workflow read once); a Workflow that cannot be read
// counts as none (the run's status still counts).
func (s *server) stepTotals(ctx context.Context) func(*v1alpha1.WorkflowRun) int {
	workflows := map[types.NamespacedName]int{}
	return func(run *v1alpha1.WorkflowRun) int {
		switch {
		case run.Spec.WorkflowSpec != nil:
			return len(run.Spec.WorkflowSpec.Steps)
		case run.Spec.WorkflowRef == "":
			return 0
		}
		key := types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}
		n, ok := workflows[key]
		if !ok {
			var wf v1alpha1.Workflow
			if err := s.o.Client.Get(ctx, key, &wf); err == nil {
				n = len(wf.Steps)
			}
			workflows[key] = n
		}
		return n
	}
}

// runSummary is run as the UI lists it; total is how many top-level steps
// its spec (or Workflow) has.
func runSummary(run *v1alpha1.WorkflowRun, total int, now time.Time) RunSummary {
	st := run.Status
	out := RunSummary{
		Namespace: run.Namespace, Name: run.Name, UID: string(run.UID),
		Phase: runPhase(run), AppID: appIDOf(run), Category: run.Labels[app.LabelCategory],
		Labels:   map[string]string{},
		Created:  rfc3339(run.CreationTimestamp),
		Started:  rfc3339(st.StartTime),
		Finished: rfc3339(st.EndTime),
		Message:  st.Message, ResourceVersion: run.ResourceVersion,
	}
	for k, v := range run.Labels {
		out.Labels[k] = v
	}
	if !st.StartTime.IsZero() {
		end := now
		if !st.EndTime.IsZero() {
			end = st.EndTime.Time
		}
		out.DurationSeconds = max(0, end.Sub(st.StartTime.Time).Seconds())
	}
	done := 0
	for _, s := range st.Steps {
		if stepDone(s.Phase) {
			done++
		}
	}
	out.Progress = fmt.Sprintf("%d/%d", done, max(total, len(st.Steps)))
	if !st.Finished && st.EndTime.IsZero() {
		out.WaitingOn = waitingOn(st.Steps)
	}
	return out
}

// waitingOn is the step a run waits on: the first suspended step or
// sub-step, else the first running one (a sub-step before its group).
func waitingOn(steps []v1alpha1.WorkflowStepStatus) string {
	for _, phase := range []v1alpha1.WorkflowStepPhase{v1alpha1.WorkflowStepPhaseSuspending, v1alpha1.WorkflowStepPhaseRunning} {
		for _, s := range steps {
			for _, sub := range s.SubStepsStatus {
				if sub.Phase == phase {
					return sub.Name
				}
			}
			if s.Phase == phase {
				return s.Name
			}
		}
	}
	return ""
}

func runPhase(run *v1alpha1.WorkflowRun) string {
	if run.Status.Phase == "" {
		return string(v1alpha1.WorkflowStepPhasePending)
	}
	return string(run.Status.Phase)
}

// rawAppIDDiffers reports whether run's app id annotation, if it has one,
// is not id.
func rawAppIDDiffers(run *v1alpha1.WorkflowRun, id string) bool {
	raw, ok := run.Annotations[app.AnnotationRawAppID]
	return ok && raw != id
}

func appIDOf(run *v1alpha1.WorkflowRun) string {
	if id := run.Annotations[app.AnnotationRawAppID]; id != "" {
		return id
	}
	return run.Labels[app.LabelAppID]
}

func rfc3339(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// stepDone reports whether a step in phase p will not run again unless
// the run is retried.
func stepDone(p v1alpha1.WorkflowStepPhase) bool {
	switch p {
	case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed,
		v1alpha1.WorkflowStepPhaseSkipped, v1alpha1.WorkflowStepPhaseStopped:
		return true
	}
	return false
}

// stepNodes are run's steps (steps, from its spec or Workflow) with their
// status: each step, then its sub-steps.
func stepNodes(run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep) ([]StepNode, error) {
	out := []StepNode{}
	for _, ref := range taskRefs(steps) {
		st, started := stepStatus(run, ref)
		n := StepNode{ID: ref.Name, Name: ref.Name, Type: ref.Type, Parent: ref.Parent,
			Phase: string(v1alpha1.WorkflowStepPhasePending), DependsOn: []string{},
			Inputs: []NamedValue{}, Outputs: []NamedValue{}, Properties: map[string]any{}}
		n.DependsOn = append(n.DependsOn, ref.Step.DependsOn...)
		if started {
			if st.ID != "" {
				n.ID = st.ID
			}
			if st.Phase != "" {
				n.Phase = string(st.Phase)
			}
			n.Reason, n.Message, n.Attempt = st.Reason, st.Message, st.Attempt
			n.Started = rfc3339(st.FirstExecuteTime)
			if stepDone(st.Phase) {
				n.Finished = rfc3339(st.LastExecuteTime)
			}
		}
		where := fmt.Sprintf("workflowrun %s/%s: step %q", run.Namespace, run.Name, ref.Name)
		for _, in := range ref.Step.Inputs {
			v, err := valueOf(st.Inputs, in.From)
			if err != nil {
				return nil, fmt.Errorf("%s: input %q: %w", where, in.From, err)
			}
			n.Inputs = append(n.Inputs, NamedValue{Name: in.From, Value: v})
		}
		for _, o := range ref.Step.Outputs {
			v, err := valueOf(st.Outputs, o.Name)
			if err != nil {
				return nil, fmt.Errorf("%s: output %q: %w", where, o.Name, err)
			}
			n.Outputs = append(n.Outputs, NamedValue{Name: o.Name, Value: v})
		}
		if p := ref.Step.Properties; p != nil && len(p.Raw) > 0 {
			if err := json.Unmarshal(p.Raw, &n.Properties); err != nil {
				return nil, fmt.Errorf("%s: properties: %w", where, err)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// valueOf is the value named name among values, nil when it has none.
func valueOf(values []v1alpha1.StepOutputValue, name string) (any, error) {
	for _, v := range values {
		if v.Name != name || v.Value == nil || len(v.Value.Raw) == 0 {
			continue
		}
		var out any
		if err := json.Unmarshal(v.Value.Raw, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, nil
}

// stepEdges are the edges between steps: what each step waits for at its
// level (pkg/graph), each edge of the first kind that applies. Steps whose
// graph cannot be built (the controller fails such a run, saying why)
// have none.
func stepEdges(steps []v1alpha1.WorkflowStep, mode *v1alpha1.WorkflowExecuteMode) []Edge {
	out := []Edge{}
	g, err := graph.Build(steps, mode)
	if err != nil {
		return out
	}
	for _, s := range g.All() {
		for _, d := range s.Deps {
			kind := EdgeOrder
			switch {
			case slices.Contains(s.Spec.DependsOn, d.Name):
				kind = EdgeDependsOn
			case readsFrom(s, d):
				kind = EdgeInput
			}
			out = append(out, Edge{From: d.Name, To: s.Name, Kind: kind})
		}
	}
	return out
}

// readsFrom reports whether s (or a sub-step of it) takes an input that
// d (or a sub-step of it) outputs.
func readsFrom(s, d *graph.Step) bool {
	outputs := map[string]bool{}
	for _, p := range append([]*graph.Step{d}, d.Children...) {
		for _, o := range p.Spec.Outputs {
			outputs[o.Name] = true
		}
	}
	for _, c := range append([]*graph.Step{s}, s.Children...) {
		for _, in := range c.Spec.Inputs {
			if outputs[in.From] {
				return true
			}
		}
	}
	return false
}
