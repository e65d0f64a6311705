package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// Operations change a run through pkg/runop, as the CLI does: the engine
// operation is applied to the run as the API server has it now, and the
// write carries the version read, so nothing is silently overwritten. A
// lockVersion query parameter or an If-Match header names the version the
// caller saw: if the run changed since, the answer is 409 and the run is
// left as it is. Each write needs "update" on workflowruns in the run's
// namespace (after "get", which finding it needs), records who did it on
// the run (runop's annotations) and in an Event.
//
// Refusals are 409 with the run's status: resume of a run that is not
// SUSPEND, retry and retryFromTask of a run not finished, suspend or
// resume of a task in a state that does not allow it. Terminate of a
// finished run, or of a finished task, succeeds and changes nothing.

// maxOperationBody bounds the body of an operation ({"context": ...},
// {"extMessage": ...}).
const maxOperationBody = 1 << 20

// routeOperations registers the instance operations under /workflow:
// PUT /{instanceId}/context, /resume, /terminate, /retry, /retryFromTask,
// and the task operations PUT /{instanceId}/tasks/{taskId}/terminate,
// /suspend, /resume.
func (s *server) routeOperations(wf chi.Router) {
	wf.Put("/{instanceId}/context", s.handle(s.setContext))
	wf.Put("/{instanceId}/resume", s.handle(s.resume))
	wf.Put("/{instanceId}/terminate", s.handle(s.terminate))
	wf.Put("/{instanceId}/retry", s.handle(s.retry))
	wf.Put("/{instanceId}/retryFromTask", s.handle(s.retryFromTask))
	for _, verb := range []string{"terminate", "suspend", "resume"} {
		wf.Put("/{instanceId}/tasks/{taskId}/"+verb, s.handle(s.taskOperation(verb)))
	}
}

// operation is one write on the run an instance id names.
type operation struct {
	// verb names it in the audit annotation, the Event and errors.
	verb string
	// apply changes the run (see runop.Update).
	apply func(ch *runop.Change) error
}

// operate finds the run (which checks get), checks update on its
// namespace, applies op through runop and records an Event saying who did
// it and what (note). It returns the run as written.
func (s *server) operate(r *http.Request, u User, op operation, note string) (*v1alpha1.WorkflowRun, error) {
	run, err := s.find(r, u, chi.URLParam(r, "instanceId"))
	if err != nil {
		return nil, err
	}
	done, err := s.operateOn(r, u, run, op, note)
	if err != nil {
		return nil, operationError(run, op.verb, err)
	}
	return done, nil
}

// operateOn is operate on a run already found; runop's errors are
// returned as they are (operationError answers them).
func (s *server) operateOn(r *http.Request, u User, run *v1alpha1.WorkflowRun, op operation, note string) (*v1alpha1.WorkflowRun, error) {
	ctx := r.Context()
	if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "update", Namespace: run.Namespace}); err != nil {
		return nil, err
	}
	lock, err := lockVersionOf(r)
	if err != nil {
		return nil, err
	}
	runs := runop.Runs{Reader: s.o.Live, Client: s.o.Client}
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	done, err := runs.Update(ctx, key, runop.Options{Verb: op.verb, Actor: u.Name, LockVersion: lock, Now: s.o.Now}, op.apply)
	if err != nil {
		return nil, err
	}
	if s.o.Events != nil {
		msg := fmt.Sprintf("%s by %s", op.verb, u.Name)
		if note != "" {
			msg += ": " + note
		}
		s.o.Events.Event(done, corev1.EventTypeNormal, "Operated", msg)
	}
	return done, nil
}

// lockVersionOf is the version the caller saw: the lockVersion query
// parameter or the If-Match header (an entity tag, quoted or not); "" for
// none, and for If-Match "*" (any version). It must be a number (an
// instance's lockVersion).
func lockVersionOf(r *http.Request) (string, error) {
	v, from := r.URL.Query().Get("lockVersion"), "lockVersion"
	if v == "" {
		v, from = r.Header.Get("If-Match"), "If-Match"
		v = strings.Trim(strings.TrimPrefix(strings.TrimSpace(v), "W/"), `"`)
		if v == "*" {
			v = ""
		}
	}
	if v == "" {
		return "", nil
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return "", badInput("%s %q: want the instance's lockVersion, a number", from, v)
		}
	}
	return v, nil
}

// operationError answers what runop returned for an instance (refusal).
func operationError(run *v1alpha1.WorkflowRun, verb string, err error) error {
	return refusal(verb, "instance "+run.Namespace+"/"+run.Name, app.InstanceState, err)
}

// refusal answers what runop returned when it did verb on what: a stale
// lockVersion and a refusal by the engine for the run's state (or a
// retry from a step whose context snapshot was not kept) are 409 (with
// the run's state as state names it), a reserved context key 400, a step
// the run does not have 404.
func refusal(verb, what string, state func(*v1alpha1.WorkflowRun) string, err error) error {
	var stale *runop.StaleError
	if errors.As(err, &stale) {
		return errorf(http.StatusConflict, "cannot %s %s: %v", verb, what, stale)
	}
	var refused *runop.RefusedError
	if !errors.As(err, &refused) {
		return fmt.Errorf("cannot %s %s: %w", verb, what, err)
	}
	switch {
	case errors.Is(err, engine.ErrReservedKey):
		return badInput("cannot %s %s: %v", verb, what, err)
	case errors.Is(err, engine.ErrFinished), errors.Is(err, engine.ErrNotFinished),
		errors.Is(err, engine.ErrNotSuspended), errors.Is(err, engine.ErrStepFinished),
		errors.Is(err, errSuspended), errors.Is(err, journal.ErrSnapshotNotKept), errors.Is(err, engine.ErrRolledBack):
		return errorf(http.StatusConflict, "cannot %s %s: it is %s: %v", verb, what, state(refused.Run), err)
	case errors.Is(err, engine.ErrNoStep):
		return errorf(http.StatusNotFound, "cannot %s %s: %v", verb, what, err)
	}
	return fmt.Errorf("cannot %s %s: %w", verb, what, err)
}

// readBody decodes the JSON body of an operation into v; an empty body
// leaves v as it is when optional.
func readBody(r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxOperationBody))
	if err != nil {
		return badInput("request body: %v (at most %d bytes)", err, maxOperationBody)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if optional {
			return nil
		}
		return badInput("request body: want a JSON object, got none")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badInput("request body: %v", err)
	}
	return nil
}

// setContext merges the body's context into the run's context variables.
func (s *server) setContext(r *http.Request, u User) (any, error) {
	var body struct {
		Context map[string]any `json:"context"`
	}
	if err := readBody(r, &body, false); err != nil {
		return nil, err
	}
	keys, err := contextKeys(body.Context)
	if err != nil {
		return nil, err
	}
	_, err = s.operate(r, u, operation{verb: "set context", apply: setContextVars(keys, body.Context)}, "variables "+strings.Join(keys, ", "))
	if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// The run operations, each a pkg/engine operation with the rules of
// this server over it, shared by /workflow and the UI's actions (which
// also ask them, through runop.Checker, which actions a run allows).

// errSuspended is a suspend of a run that is suspended already.
var errSuspended = errors.New("the run is suspended already")

// resumeRun resumes a SUSPEND run; any other is refused.
func resumeRun(ch *runop.Change) error {
	if st := app.InstanceState(ch.Run); st != app.InstanceSuspend {
		return fmt.Errorf("%w: the run is %s, not %s", engine.ErrNotSuspended, st, app.InstanceSuspend)
	}
	return engine.Resume(ch.Status, "")
}

// suspendRun suspends an unfinished run that is not SUSPEND already.
func suspendRun(ch *runop.Change) error {
	if st := app.InstanceState(ch.Run); st == app.InstanceSuspend {
		return fmt.Errorf("%w (%s)", errSuspended, st)
	}
	return engine.Suspend(ch.Status, "")
}

// terminateRun stops the run, as its onTerminate says; a finished run is
// refused with engine.ErrFinished.
func terminateRun(now func() time.Time) func(*runop.Change) error {
	return func(ch *runop.Change) error { return ch.Terminate("", now()) }
}

// retryRun runs a finished run again from its first step.
func retryRun(ch *runop.Change) error { return engine.Retry(ch.Status) }

// retryFromStep runs step of a finished run again, with the inputs and
// context its last attempt had, and every step after it.
func retryFromStep(step string) func(*runop.Change) error {
	return func(ch *runop.Change) error {
		g, err := ch.Graph()
		if err != nil {
			return err
		}
		j, err := ch.Journal()
		if err != nil {
			return err
		}
		return engine.RetryFrom(ch.Status, g, step, j)
	}
}

// contextKeys are the names of the variables a context body sets, sorted:
// a 400 for none, a nameless one or a reserved one.
func contextKeys(vars map[string]any) ([]string, error) {
	if len(vars) == 0 {
		return nil, badInput(`context: want at least one variable, as {"context": {"continueRollout": true}}`)
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if k == "" {
			return nil, badInput("context: a variable needs a name")
		}
		if slices.Contains(engine.ReservedContextKeys, k) {
			return nil, badInput("context: %q is reserved (the engine sets it in every step's context; reserved: %s)",
				k, strings.Join(engine.ReservedContextKeys, ", "))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// setContextVars sets the variables keys of vars in the run's context.
func setContextVars(keys []string, vars map[string]any) func(*runop.Change) error {
	return func(ch *runop.Change) error {
		j, err := ch.Journal()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := engine.SetContext(ch.Status, j, k, vars[k]); err != nil {
				return fmt.Errorf("context variable %q: %w", k, err)
			}
		}
		return nil
	}
}

// command is what an instance operation answers.
func command(r *http.Request, name string, run *v1alpha1.WorkflowRun, msg string) Command {
	id, _ := app.InstanceID(run)
	return Command{Command: name, WorkflowInstanceID: id, ClientHost: clientHost(r), Success: true, Message: msg}
}

// resume resumes a SUSPEND run; any other is a 409.
func (s *server) resume(r *http.Request, u User) (any, error) {
	run, err := s.operate(r, u, operation{verb: "resume", apply: resumeRun}, "")
	if err != nil {
		return nil, err
	}
	return command(r, "RESUME", run, "resumed"), nil
}

// terminate stops the run; a finished run is left as it is (200).
func (s *server) terminate(r *http.Request, u User) (any, error) {
	run, err := s.find(r, u, chi.URLParam(r, "instanceId"))
	if err != nil {
		return nil, err
	}
	done, err := s.operateOn(r, u, run, operation{verb: "terminate", apply: terminateRun(s.o.Now)}, "")
	var refused *runop.RefusedError
	if errors.As(err, &refused) && errors.Is(err, engine.ErrFinished) {
		// The documented no-op: nothing was written.
		return command(r, "TERMINATE", refused.Run, "nothing to do: the run was already finished ("+app.InstanceState(refused.Run)+")"), nil
	}
	if err != nil {
		return nil, operationError(run, "terminate", err)
	}
	return command(r, "TERMINATE", done, "terminated"), nil
}

// retry runs a finished run again from its first step.
func (s *server) retry(r *http.Request, u User) (any, error) {
	run, err := s.operate(r, u, operation{verb: "retry", apply: retryRun}, "")
	if err != nil {
		return nil, err
	}
	return command(r, "RETRY", run, "retrying from the first step"), nil
}

// retryFromTask runs the task named by taskId again, with the inputs and
// context its last attempt had, and every task after it.
func (s *server) retryFromTask(r *http.Request, u User) (any, error) {
	param := r.URL.Query().Get("taskId")
	if param == "" {
		return nil, badInput("taskId: required (the task's id or step name)")
	}
	run, ref, err := s.findTaskToOperate(r, u, param)
	if err != nil {
		return nil, err
	}
	done, err := s.operateOn(r, u, run, operation{verb: "retry from task", apply: retryFromStep(ref.Name)}, fmt.Sprintf("task %d (step %s)", ref.ID, ref.Name))
	if err != nil {
		return nil, operationError(run, "retry from task", err)
	}
	return command(r, "RETRY_FROM_TASK", done, fmt.Sprintf("retrying from task %d (step %s)", ref.ID, ref.Name)), nil
}

// findTaskToOperate finds the run and its task param names (404 when it
// has none such).
func (s *server) findTaskToOperate(r *http.Request, u User, param string) (*v1alpha1.WorkflowRun, taskRef, error) {
	run, err := s.find(r, u, chi.URLParam(r, "instanceId"))
	if err != nil {
		return nil, taskRef{}, err
	}
	steps, _, err := runop.Steps(r.Context(), s.o.Client, run)
	if err != nil {
		return nil, taskRef{}, fmt.Errorf("workflowrun %s/%s: its steps: %w", run.Namespace, run.Name, err)
	}
	ref, err := findTask(taskRefs(steps), chi.URLParam(r, "instanceId"), param)
	if err != nil {
		return nil, taskRef{}, err
	}
	return run, ref, nil
}

// taskOperation terminates, suspends or resumes one task, recording the
// body's extMessage on its step and in the Event.
func (s *server) taskOperation(verb string) call {
	return func(r *http.Request, u User) (any, error) {
		var body struct {
			ExtMessage string `json:"extMessage"`
		}
		if err := readBody(r, &body, true); err != nil {
			return nil, err
		}
		run, ref, err := s.findTaskToOperate(r, u, chi.URLParam(r, "taskId"))
		if err != nil {
			return nil, err
		}
		note := fmt.Sprintf("task %d (step %s)", ref.ID, ref.Name)
		if body.ExtMessage != "" {
			note += ": " + body.ExtMessage
		}
		_, err = s.operateOn(r, u, run, operation{verb: verb + " task", apply: func(ch *runop.Change) error {
			g, err := ch.Graph()
			if err != nil {
				return err
			}
			switch verb {
			case "terminate":
				return engine.TerminateStep(ch.Status, g, ref.Name, body.ExtMessage, s.o.Now())
			case "suspend":
				return engine.SuspendStep(ch.Status, g, ref.Name, body.ExtMessage)
			default:
				return engine.ResumeStep(ch.Status, g, ref.Name, body.ExtMessage)
			}
		}}, note)
		if err != nil {
			return nil, operationError(run, verb+" task", err)
		}
		return map[string]any{}, nil
	}
}
