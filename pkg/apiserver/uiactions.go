package apiserver

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// The UI's run actions: POST /ui/api/runs/{namespace}/{name}/actions/{verb}
// is one of the run operations /workflow has (operations.go: the same
// functions, through runop, after a SubjectAccessReview of update; who
// did it on the run and in an Operated Event; If-Match checked against
// the run's resourceVersion), and GET /ui/api/runs/{namespace}/{name}
// says which of them the run allows now (Actions): each is asked of the
// same function with runop.Checker, which applies it to a copy of the
// run and writes nothing, so the UI never holds a second copy of the
// rules.

// Actions are the operations a run allows now.
type Actions struct {
	Resume     bool `json:"resume"`
	Suspend    bool `json:"suspend"`
	Terminate  bool `json:"terminate"`
	Retry      bool `json:"retry"`
	SetContext bool `json:"setContext"`
	// RetryFrom are the steps (and sub-steps) a retry from a step may
	// start at; empty when none.
	RetryFrom []string `json:"retryFrom"`
}

// ActionResult is what an action answers: the run after the write.
type ActionResult struct {
	Run RunSummary `json:"run"`
}

// ActionBody is the body of an action: Step for retry-from, Context for
// context (merged into the run's context variables); the others take
// none.
type ActionBody struct {
	Step    string         `json:"step,omitempty"`
	Context map[string]any `json:"context,omitempty"`
}

// The verbs of POST .../actions/{verb}.
var actionVerbs = []string{"resume", "suspend", "terminate", "retry", "retry-from", "context"}

// contextProbe is the variable actionsOf asks a set context with: the
// engine refuses a set context by the run's state, not by its names.
const contextProbe = "stepflowActionCheck"

// actionsOf are the operations u may do on run now: none when u may not
// update runs in its namespace (the review every action passes), else
// each operation's function applied to a copy of run (runop.Checker);
// steps are its steps, whose names a retry from a step is asked of.
func (s *server) actionsOf(ctx context.Context, u User, run *v1alpha1.WorkflowRun, steps []v1alpha1.WorkflowStep) Actions {
	if s.o.Auth.Authorize(ctx, u, Access{Verb: "update", Namespace: run.Namespace}) != nil {
		return Actions{RetryFrom: []string{}}
	}
	check := runop.Runs{Reader: s.o.Client, Client: s.o.Client}.Checker(run)
	ok := func(fn func(*runop.Change) error) bool { return check.Check(ctx, fn) == nil }
	a := Actions{
		Resume:     ok(resumeRun),
		Suspend:    ok(suspendRun),
		Terminate:  ok(terminateRun(s.o.Now)),
		Retry:      ok(retryRun),
		SetContext: ok(setContextVars([]string{contextProbe}, map[string]any{contextProbe: true})),
		RetryFrom:  []string{},
	}
	for _, ref := range taskRefs(steps) {
		if ok(retryFromStep(ref.Name)) {
			a.RetryFrom = append(a.RetryFrom, ref.Name)
		}
	}
	return a
}

// uiAction is POST /ui/api/runs/{namespace}/{name}/actions/{verb}.
func (s *server) uiAction(r *http.Request, u User) (any, error) {
	verb := chi.URLParam(r, "verb")
	var body ActionBody
	if err := readBody(r, &body, true); err != nil {
		return nil, err
	}
	var (
		op   operation
		note string
	)
	switch verb {
	case "resume":
		op = operation{verb: "resume", apply: resumeRun}
	case "suspend":
		op = operation{verb: "suspend", apply: suspendRun}
	case "terminate":
		op = operation{verb: "terminate", apply: terminateRun(s.o.Now)}
	case "retry":
		op = operation{verb: "retry", apply: retryRun}
	case "retry-from":
		if body.Step == "" {
			return nil, badInput(`retry-from: the body names no step: want {"step": "name"}`)
		}
		op, note = operation{verb: "retry from step", apply: retryFromStep(body.Step)}, "step "+body.Step
	case "context":
		keys, err := contextKeys(body.Context)
		if err != nil {
			return nil, err
		}
		op, note = operation{verb: "set context", apply: setContextVars(keys, body.Context)}, "variables "+strings.Join(keys, ", ")
	default:
		return nil, errorf(http.StatusNotFound, "no action %q: want one of %s", verb, strings.Join(actionVerbs, ", "))
	}
	ctx := r.Context()
	run, err := s.uiFind(ctx, u, r)
	if err != nil {
		return nil, err
	}
	done, err := s.operateOn(r, u, run, op, note)
	if err != nil {
		return nil, refusal(op.verb, "run "+run.Namespace+"/"+run.Name, runPhase, err)
	}
	return ActionResult{Run: runSummary(done, s.stepTotals(ctx)(done), s.o.Now())}, nil
}
