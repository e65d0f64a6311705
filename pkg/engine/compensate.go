package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Rolling back (saga compensation). A run whose onFailure is Compensate
// does not end failed when a step fails for good: it goes to phase
// rollingBack, and the compensations of its steps and sub-steps that
// succeeded run, each once every compensation that must come first has
// finished. So does a run terminated (by TerminateRollingBack, or by a
// template's #Terminate) whose onTerminate is Compensate.
//
//	executing ──(a step failed for good, ──▶ rollingBack ──▶ rolledBack
//	             or terminated)                  │
//	                                             └────────▶ rollbackFailed
//
// Which steps: those that succeeded when the rollback began, with a
// compensation: the step's compensate, else its definition's default
// (DefaultCompensation); compensate: {disabled: true} switches it off. Its
// properties are the step's compensate.properties, else (for the
// definition's type) the default's, else the original step's, with the
// inputs it recorded at their parameterKeys. Each one's state is in its step's
// status.compensation from the start (pending); steps without one are
// left out of the rollback and keep no compensation status.
//
// Order: the reverse of the run's. A step's compensation waits for the
// compensations of every step that waited for it (its dependents, and
// theirs: in StepByStep mode the steps after it), and a group's for its
// sub-steps'; a sub-step's waits for those of the steps after its group.
// Independent compensations run concurrently in the same tick, within
// Parallelism, as DAG steps do.
//
// A compensation is evaluated as a step of its type: its own attempt ids
// (CompensationID, derived from the original step's id), so its effects
// are exactly-once through the journal; its own retry policy (the step
// default without one) and timeout (counted from its first attempt). Its
// template sees, besides the step's usual context, context.compensating:
// the original step's name, properties, inputs and outputs.
//
// A compensation that fails for good (its template fails, its retries run
// out, it times out, its type names no definition) does not stop the
// others that do not wait for it; those that wait for it are skipped
// (reason CompensationFailed): undoing what came before a step that could
// not be undone could leave things worse. Once every compensation has
// finished, the run is rolledBack if all succeeded, else rollbackFailed
// with status.rollbackError naming the first step whose compensation
// failed, the compensation's type and its error. A run with nothing to
// compensate is rolledBack at once.
//
// Terminate while rolling back stops the rollback where it is: running
// compensations fail (reason Terminate), pending ones are skipped, and
// the run is rollbackFailed with a rollbackError that says so and names
// the steps being compensated.
//
// The run's conditions through it all: Failed is True (reason
// RollingBack, RolledBack or RollbackFailed), Succeeded False; the
// message stays the failure's (status.message), rollbackError says how
// the rollback ended.
//
// A run that declares neither policy never reaches this code beyond one
// comparison a tick: it costs a succeeding run nothing.

// Reasons of a compensation's status.
const (
	// ReasonCompensationFailed: a compensation skipped because one it
	// waited for failed.
	ReasonCompensationFailed = "CompensationFailed"
	// ReasonRollbackTerminated: a pending compensation skipped because
	// the rollback was terminated.
	ReasonRollbackTerminated = "RollbackTerminated"
)

// rollingBack reports whether the run's phase is one of the rollback's.
func rollingBack(p v1alpha1.WorkflowRunPhase) bool {
	switch p {
	case v1alpha1.WorkflowRunRollingBack, v1alpha1.WorkflowRunRolledBack, v1alpha1.WorkflowRunRollbackFailed:
		return true
	}
	return false
}

// rollback begins the rollback of a run that just failed for good or was
// terminated, when its policy says so, and advances a rollback under way.
func (t *tick) rollback(ctx context.Context) {
	o := t.orchestration()
	if o.OnFailure != v1alpha1.FailurePolicyCompensate && o.OnTerminate != v1alpha1.FailurePolicyCompensate {
		return
	}
	switch {
	case t.st.Phase == v1alpha1.WorkflowRunRollingBack:
	case rollingBack(t.st.Phase):
		return
	case t.st.Terminated:
		if o.OnTerminate != v1alpha1.FailurePolicyCompensate {
			return
		}
		t.beginRollback(t.st.Message)
	case o.OnFailure == v1alpha1.FailurePolicyCompensate:
		msg, ok := t.failedForGood()
		if !ok {
			return
		}
		t.beginRollback(msg)
	default:
		return
	}
	t.compensate(ctx)
}

// failedForGood reports whether every top-level step finished and one
// failed, with the run's failure message, as summarize words it.
func (t *tick) failedForGood() (string, bool) {
	failed := ""
	for _, s := range t.g.Steps {
		ss := statusOf(t.st, s)
		if ss == nil || !finished(ss.Phase) {
			return "", false
		}
		if ss.Phase == v1alpha1.WorkflowStepPhaseFailed && failed == "" {
			failed = fmt.Sprintf("step %q failed: %s", ss.Name, ss.Message)
		}
	}
	return failed, failed != ""
}

// beginRollback makes the run rollingBack with msg as its message, and
// records a pending compensation on every step that succeeded and has one.
func (t *tick) beginRollback(msg string) {
	t.st.Phase, t.st.Message, t.st.Finished = v1alpha1.WorkflowRunRollingBack, msg, false
	t.st.EndTime, t.st.Duration = metav1.Time{}, nil
	for _, s := range t.g.All() {
		ss := statusOf(t.st, s)
		if ss == nil || ss.Phase != v1alpha1.WorkflowStepPhaseSucceeded {
			continue
		}
		if c, ok := t.compensationOf(s, ss); ok {
			ss.Compensation = &v1alpha1.CompensationStatus{Type: c.typ, Phase: v1alpha1.WorkflowStepPhasePending}
		}
	}
}

// compensation is what undoes one step: its type, parameters, timeout and
// retry policy. err is set when its properties cannot be read.
type compensation struct {
	typ     string
	props   map[string]any
	timeout string
	retry   *v1alpha1.RetryPolicy
	err     error
}

// compensationOf resolves the compensation of step s (status ss): the
// step's own, else its definition's default; ok is false when it has
// none.
func (t *tick) compensationOf(s *graph.Step, ss *v1alpha1.StepStatus) (c compensation, ok bool) {
	own := s.Spec.Compensate
	if own != nil {
		if own.Disabled {
			return c, false
		}
		c.timeout, c.retry = own.Timeout, own.Retry
	}
	if own != nil && own.Type != "" {
		c.typ = own.Type
		if own.Properties != nil {
			c.props, c.err = objectOf(own.Properties, "compensate.properties")
		} else {
			c.props, c.err = t.originalProperties(s, ss)
		}
		return c, true
	}
	if s.IsGroup() {
		return c, false
	}
	def, err := t.in.Definitions.Lookup(s.Spec.Type)
	if err != nil || def.Compensate == nil || def.Compensate.Type == "" {
		// A step that succeeded had its definition; one deleted since
		// declares nothing any more.
		return c, false
	}
	c.typ = def.Compensate.Type
	switch {
	case own != nil && own.Properties != nil:
		c.props, c.err = objectOf(own.Properties, "compensate.properties")
	case def.Compensate.Properties != nil:
		c.props = copyValue(def.Compensate.Properties).(map[string]any)
	default:
		c.props, c.err = t.originalProperties(s, ss)
	}
	return c, true
}

// objectOf decodes a raw JSON object (nil: empty).
func objectOf(raw *runtime.RawExtension, what string) (map[string]any, error) {
	out := map[string]any{}
	if raw == nil || len(raw.Raw) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(raw.Raw, &out); err != nil {
		return nil, fmt.Errorf("%s are not a JSON object: %v", what, err)
	}
	return out, nil
}

// originalProperties are the properties step s ran with: its own, with
// the inputs it recorded set at their parameterKeys.
func (t *tick) originalProperties(s *graph.Step, ss *v1alpha1.StepStatus) (map[string]any, error) {
	props := map[string]any{}
	if raw := s.Spec.Properties; raw != nil && len(raw.Raw) > 0 {
		if err := json.Unmarshal(raw.Raw, &props); err != nil {
			return nil, fmt.Errorf("properties are not a JSON object: %v", err)
		}
	}
	inputs := recordedInputs(ss)
	for _, in := range s.Spec.Inputs {
		if in.ParameterKey != "" {
			setPath(props, in.ParameterKey, inputs[in.From])
		}
	}
	return props, nil
}

func recordedInputs(ss *v1alpha1.StepStatus) map[string]any {
	out := make(map[string]any, len(ss.Inputs))
	for _, in := range ss.Inputs {
		out[in.Name] = decodeJSON(in.Value)
	}
	return out
}

// copyValue copies a JSON-like value, so a definition's properties are
// never shared with an evaluation.
func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = copyValue(e)
		}
		return l
	}
	return v
}

// CompensationID is the id of attempt of the compensation of the step
// attempt stepID: distinct from every step attempt's id, the same each
// time it is worked out, and of StepID's shape (a DNS label).
func CompensationID(stepID string, attempt int32) string {
	return StepID(stepID, 0, "compensate", attempt)
}

// compensating is one compensation due for evaluation in this round.
type compensating struct {
	step *graph.Step
	cs   *v1alpha1.CompensationStatus
	req  eval.Request
	out  eval.Outcome
	c    compensation
}

// compensate runs the compensations that are due, round after round, each
// at most once in the tick, then ends the rollback once all finished.
func (t *tick) compensate(ctx context.Context) {
	order := newRollbackOrder(t.g)
	done := map[*graph.Step]bool{}
	for round := 0; round < 1000; round++ {
		changed, ready := t.collectCompensations(order, done)
		if len(ready) == 0 {
			if !changed {
				break
			}
			continue
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, t.in.Parallelism)
		for _, p := range ready {
			wg.Add(1)
			sem <- struct{}{}
			go func(p *compensating) {
				defer wg.Done()
				defer func() { <-sem }()
				p.out = t.in.Evaluator.Evaluate(ctx, p.req)
			}(p)
		}
		wg.Wait()
		for _, p := range ready {
			t.applyCompensation(p)
		}
	}
	t.endRollback()
}

// rollbackOrder knows which compensations each one waits for.
type rollbackOrder struct {
	dependents map[*graph.Step][]*graph.Step
}

func newRollbackOrder(g *graph.Graph) *rollbackOrder {
	o := &rollbackOrder{dependents: map[*graph.Step][]*graph.Step{}}
	for _, s := range g.All() {
		for _, d := range s.Deps {
			o.dependents[d] = append(o.dependents[d], s)
		}
	}
	return o
}

// after calls fn with every step whose compensation must finish before
// s's: the steps that waited for s (or for a group holding it), a group's
// sub-steps, and, transitively, the same for each of them.
func (o *rollbackOrder) after(s *graph.Step, fn func(*graph.Step)) {
	seen := map[*graph.Step]bool{s: true}
	var walk func(x *graph.Step)
	visit := func(y *graph.Step) {
		if !seen[y] {
			seen[y] = true
			fn(y)
			walk(y)
		}
	}
	walk = func(x *graph.Step) {
		for _, y := range o.dependents[x] {
			visit(y)
		}
		for _, c := range x.Children {
			visit(c)
		}
		for p := x.Parent; p != nil; p = p.Parent {
			for _, y := range o.dependents[p] {
				visit(y)
			}
		}
	}
	walk(s)
}

// collectCompensations starts, times out and skips compensations, and
// returns those due for evaluation now.
func (t *tick) collectCompensations(order *rollbackOrder, done map[*graph.Step]bool) (changed bool, ready []*compensating) {
	for _, s := range t.g.All() {
		ss := statusOf(t.st, s)
		if ss == nil || ss.Compensation == nil || finished(ss.Compensation.Phase) || done[s] {
			continue
		}
		cs := ss.Compensation
		waiting, failedFirst := false, ""
		order.after(s, func(y *graph.Step) {
			ys := statusOf(t.st, y)
			if ys == nil || ys.Compensation == nil {
				return
			}
			switch {
			case !finished(ys.Compensation.Phase):
				waiting = true
			case ys.Compensation.Phase == v1alpha1.WorkflowStepPhaseFailed && failedFirst == "":
				failedFirst = y.Name
			}
		})
		if waiting {
			continue
		}
		if failedFirst != "" {
			t.finishCompensation(cs, v1alpha1.WorkflowStepPhaseSkipped, ReasonCompensationFailed,
				fmt.Sprintf("not compensated: the compensation of step %q, which came after it, failed", failedFirst))
			changed = true
			continue
		}
		c, ok := t.compensationOf(s, ss)
		if !ok {
			// Its spec changed since the rollback began: nothing to run.
			t.finishCompensation(cs, v1alpha1.WorkflowStepPhaseSkipped, ReasonSkip, "no compensation any more")
			changed = true
			continue
		}
		if cs.Phase == v1alpha1.WorkflowStepPhasePending {
			if wait, moved := t.compensationRateLimited(c.typ, ss, cs); wait {
				changed = changed || moved
				continue
			}
			cs.Phase, cs.Reason, cs.Message = v1alpha1.WorkflowStepPhaseRunning, "", ""
			if cs.Attempt == 0 {
				cs.Attempt = 1
			}
			cs.ID = CompensationID(ss.ID, cs.Attempt)
			cs.FirstExecuteTime, cs.LastExecuteTime = t.metaNow(), t.metaNow()
			changed = true
		}
		if to, err := time.ParseDuration(c.timeout); err == nil && c.timeout != "" {
			at := cs.FirstExecuteTime.Add(to)
			if !t.now.Before(at) {
				t.failCompensation(s, cs, c, ReasonTimeout, fmt.Sprintf("timed out: its timeout of %s ran out", c.timeout))
				changed = true
				continue
			}
			t.wakeAt(at)
		}
		if cs.NextAttemptTime != nil && t.now.Before(cs.NextAttemptTime.Time) {
			t.wakeAt(cs.NextAttemptTime.Time)
			continue
		}
		done[s] = true
		if p := t.compensationRequest(s, ss, cs, c); p != nil {
			ready = append(ready, p)
		}
		changed = true
	}
	return changed, ready
}

// compensationRequest builds the evaluation of s's compensation, or fails
// it (and returns nil) when it cannot be built.
func (t *tick) compensationRequest(s *graph.Step, ss *v1alpha1.StepStatus, cs *v1alpha1.CompensationStatus, c compensation) *compensating {
	if c.err != nil {
		t.failCompensation(s, cs, c, eval.ReasonParameter, c.err.Error())
		return nil
	}
	def, err := t.in.Definitions.Lookup(c.typ)
	if err != nil {
		t.failCompensation(s, cs, c, ReasonDefinitionNotFound, fmt.Sprintf("no such definition: %v", err))
		return nil
	}
	ctx := t.stepContext(s, cs.ID)
	props, _ := t.originalProperties(s, ss)
	outputs := make(map[string]any, len(ss.Outputs))
	for _, o := range ss.Outputs {
		outputs[o.Name] = decodeJSON(o.Value)
	}
	ctx["compensating"] = map[string]any{
		"name": s.Name, "type": s.Spec.Type, "stepSessionID": ss.ID,
		"properties": props, "inputs": recordedInputs(ss), "outputs": outputs,
	}
	p := &compensating{step: s, cs: cs, c: c, req: eval.Request{
		Definition: def,
		Parameters: c.props,
		Context:    ctx,
		Step: op.Step{RunUID: string(t.in.Run.UID), RunName: t.in.Run.Name, Namespace: t.in.Run.Namespace,
			StepName: s.Name, StepID: cs.ID, ServiceAccount: t.in.ServiceAccount},
		Env:    op.Env{Log: t.in.Logs},
		Runner: t.in.Ops,
	}}
	if t.in.Journal != nil {
		p.req.Env.Vars = t.in.Journal
		p.req.Runner = t.in.Journal.Runner(t.in.Ops)
	}
	return p
}

// applyCompensation records one evaluation of a compensation.
func (t *tick) applyCompensation(p *compensating) {
	cs, out := p.cs, p.out
	before := *cs
	switch out.Phase {
	case eval.Succeeded:
		t.finishCompensation(cs, v1alpha1.WorkflowStepPhaseSucceeded, "", out.Message)
	case eval.Waiting:
		cs.Phase, cs.Reason, cs.Message = v1alpha1.WorkflowStepPhaseRunning, ReasonWait, out.Message
		cs.NextAttemptTime = nil
		t.wakeAt(t.now.Add(pollInterval(t.now, cs.FirstExecuteTime.Time)))
	case eval.Suspending:
		t.failCompensation(p.step, cs, p.c, ReasonSuspend, "a compensation cannot suspend: "+out.Message)
	case eval.Failed, eval.Terminating:
		t.failCompensation(p.step, cs, p.c, out.Reason, out.Message)
	case eval.Broken:
		t.retryCompensation(p, errors.Is(out.Err, journal.ErrSave))
	case eval.Interrupted:
		// Not the compensation's fault: the same attempt again soon.
		cs.Phase, cs.Reason, cs.Message = v1alpha1.WorkflowStepPhaseRunning, eval.ReasonInterrupted, out.Message
		at := metav1.NewTime(ceilSecond(t.now.Add(interruptedDelay)))
		cs.NextAttemptTime = &at
		t.wakeAt(at.Time)
	}
	cs.Message = truncate(cs.Message, t.messageLimit())
	if cs.Phase != before.Phase || cs.Reason != before.Reason || cs.Message != before.Message || cs.ID != before.ID {
		cs.LastExecuteTime = t.metaNow()
	}
}

// retryCompensation schedules the next attempt of an erroring
// compensation under its retry policy, or fails it once its attempts run
// out. A journal record that could not be saved repeats the same attempt
// (same id: its effect is not sent twice), counted as a retry.
func (t *tick) retryCompensation(p *compensating, sameAttempt bool) {
	cs, msg := p.cs, p.out.Message
	attempts, initial, factor, maxBackoff := retryPolicy(p.c.retry)
	if cs.Retries+1 >= attempts {
		what := fmt.Sprintf("failed after %d attempts", cs.Retries+1)
		if attempts == 1 {
			what = "failed on its first attempt, retry.limit is 0"
		}
		t.failCompensation(p.step, cs, p.c, ReasonFailedAfterRetries, what+": "+msg)
		return
	}
	backoff := time.Duration(float64(initial) * math.Pow(factor, float64(cs.Retries)))
	if backoff > maxBackoff || backoff <= 0 {
		backoff = maxBackoff
	}
	cs.Retries++
	reason := ReasonError
	if sameAttempt {
		reason = ReasonJournal
	} else {
		cs.Attempt++
		cs.ID = CompensationID(statusOf(t.st, p.step).ID, cs.Attempt)
	}
	cs.Phase, cs.Reason, cs.Message = v1alpha1.WorkflowStepPhaseRunning, reason, msg
	at := metav1.NewTime(ceilSecond(t.now.Add(backoff)))
	cs.NextAttemptTime = &at
	t.wakeAt(at.Time)
}

// failCompensation fails a compensation for good; its message names the
// step, the compensation's type and what happened.
func (t *tick) failCompensation(s *graph.Step, cs *v1alpha1.CompensationStatus, c compensation, reason, msg string) {
	t.finishCompensation(cs, v1alpha1.WorkflowStepPhaseFailed, reason,
		fmt.Sprintf("step %q: compensation %q: %s", s.Name, c.typ, msg))
	t.failed = append(t.failed, FailedAttempt{
		Step: s.Name, StepID: cs.ID, Definition: c.typ, Reason: cs.Reason, Message: cs.Message,
	})
}

func (t *tick) finishCompensation(cs *v1alpha1.CompensationStatus, phase v1alpha1.WorkflowStepPhase, reason, msg string) {
	cs.Phase, cs.Reason, cs.Message = phase, reason, msg
	cs.NextAttemptTime = nil
	cs.LastExecuteTime = t.metaNow()
}

// endRollback ends a rollback whose compensations all finished:
// rolledBack, or rollbackFailed naming the first that failed.
func (t *tick) endRollback() {
	all, failed := true, ""
	eachStep(t.st, func(ss *v1alpha1.StepStatus) {
		cs := ss.Compensation
		if cs == nil {
			return
		}
		if !finished(cs.Phase) {
			all = false
		}
		if cs.Phase == v1alpha1.WorkflowStepPhaseFailed && failed == "" {
			failed = fmt.Sprintf("%s (%s)", cs.Message, cs.Reason)
		}
	})
	if !all {
		return
	}
	t.st.Finished = true
	if failed != "" {
		t.st.Phase, t.st.RollbackError = v1alpha1.WorkflowRunRollbackFailed, truncate(failed, MaxMessageBytes)
		return
	}
	t.st.Phase = v1alpha1.WorkflowRunRolledBack
}

// terminateRollback stops a rollback under way (Terminate): running
// compensations fail, pending ones are skipped, and the run is
// rollbackFailed, its rollbackError naming the steps being compensated.
func terminateRollback(st *v1alpha1.WorkflowRunStatus, at metav1.Time) {
	var running []string
	eachStep(st, func(ss *v1alpha1.StepStatus) {
		cs := ss.Compensation
		if cs == nil || finished(cs.Phase) {
			return
		}
		if cs.Phase == v1alpha1.WorkflowStepPhasePending {
			cs.Phase, cs.Reason, cs.Message = v1alpha1.WorkflowStepPhaseSkipped, ReasonRollbackTerminated, "not compensated: the rollback was terminated"
		} else {
			running = append(running, fmt.Sprintf("%q (compensation %q)", ss.Name, cs.Type))
			cs.Phase, cs.Reason, cs.Message = v1alpha1.WorkflowStepPhaseFailed, ReasonTerminate, "terminated during the rollback"
		}
		cs.NextAttemptTime = nil
		cs.LastExecuteTime = at
	})
	msg := "terminated during the rollback, before any compensation ran"
	if len(running) > 0 {
		msg = "terminated during the rollback, while compensating step " + joinList(running)
	}
	st.Phase, st.RollbackError = v1alpha1.WorkflowRunRollbackFailed, msg
	st.Terminated, st.Finished, st.Suspend, st.SuspendState = true, true, false, ""
	st.EndTime = at
	setDuration(st)
	setConditions(st, st.ObservedGeneration, at, nil)
}

func joinList(items []string) string {
	out := ""
	for i, s := range items {
		switch {
		case i == 0:
		case i == len(items)-1:
			out += " and "
		default:
			out += ", "
		}
		out += s
	}
	return out
}

// TerminateRollingBack terminates the run, as Terminate does, for a caller
// that knows the run's onTerminate is Compensate: the unfinished steps
// fail with reason Terminate, but the run is left unfinished for its next
// tick, which rolls it back (or, should its onTerminate not be Compensate
// after all, ends it terminated). A run rolling back is stopped as
// Terminate stops it. With a step, it is Terminate.
func TerminateRollingBack(st *v1alpha1.WorkflowRunStatus, step string, now time.Time) error {
	if step != "" || st.Finished || st.Phase == v1alpha1.WorkflowRunRollingBack {
		return Terminate(st, step, now)
	}
	at := metav1.NewTime(now.Truncate(time.Second))
	eachStep(st, func(ss *v1alpha1.StepStatus) { terminateStep(ss, at) })
	st.Terminated, st.Suspend, st.SuspendState = true, false, ""
	return nil
}

// liveCompensations adds to live the ids of the compensation attempts a
// run that may roll back can still run: those under way, and the first
// attempt of the compensation of each step's current attempt, which may
// yet begin (a status that began it, or even the step's success, may have
// been lost after the compensation's effects were recorded).
func (t *tick) liveCompensations(live map[string]bool) {
	o := t.orchestration()
	if o.OnFailure != v1alpha1.FailurePolicyCompensate && o.OnTerminate != v1alpha1.FailurePolicyCompensate {
		return
	}
	for _, s := range t.g.All() {
		ss := statusOf(t.st, s)
		if ss == nil {
			live[CompensationID(t.stepID(s.Name, 1), 1)] = true
			continue
		}
		id := ss.ID
		if id == "" {
			id = t.stepID(s.Name, max(ss.Attempt, 1))
		}
		switch cs := ss.Compensation; {
		case cs == nil:
			live[CompensationID(id, 1)] = true
		case !finished(cs.Phase):
			if cs.ID != "" {
				live[cs.ID] = true
			}
			live[CompensationID(id, max(cs.Attempt, 1))] = true
		}
	}
}
