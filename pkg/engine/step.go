package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// collect visits every step: it makes the transitions that need no
// evaluation (skips, timeouts, timed resumes, groups) and returns the leaf
// steps due for evaluation.
func (t *tick) collect() (changed bool, ready []*pending) {
	for _, s := range t.g.Steps {
		c, r := t.visit(s, deadline{})
		changed = changed || c
		ready = append(ready, r...)
		if t.g.Mode.Steps == v1alpha1.WorkflowModeStep && len(ready) > 0 {
			break
		}
	}
	return changed, ready
}

// visit handles one step; group is its group's deadline, if any.
func (t *tick) visit(s *graph.Step, group deadline) (changed bool, ready []*pending) {
	ss := statusOf(t.st, s)
	if ss != nil && finished(ss.Phase) {
		return false, nil
	}
	for _, d := range s.Deps {
		if ds := statusOf(t.st, d); ds == nil || !finished(ds.Phase) {
			return false, nil
		}
	}
	if ss != nil && held(ss) {
		// Suspended by the operator before it started (SuspendStep): it
		// starts once resumed.
		return false, nil
	}
	if ss == nil || ss.Phase == v1alpha1.WorkflowStepPhasePending {
		run, reason, msg := t.shouldRun(s)
		if reason == reasonConditionInterrupted {
			// Infrastructure trouble, not the expression's fault: the step
			// stays pending and its if is evaluated again shortly.
			t.wakeAt(t.now.Add(interruptedDelay))
			return false, nil
		}
		created := ss == nil
		ss = t.ensure(s)
		if !run {
			t.finish(ss, v1alpha1.WorkflowStepPhaseSkipped, reason, msg)
			for _, c := range s.Children {
				t.finish(t.ensure(c), v1alpha1.WorkflowStepPhaseSkipped, ReasonSkip, "its step group was skipped")
			}
			return true, nil
		}
		if reason == ReasonCondition {
			t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, reason, msg)
			t.attemptFailed(s, ss.ID, ss, nil)
			return true, nil
		}
		if wait, c := t.rateLimited(s, ss); wait {
			return created || c, nil
		}
		t.start(ss, s)
		changed = true
	}
	if d := t.deadline(s, ss, group); !d.at.IsZero() {
		if !t.now.Before(d.at) {
			t.timeout(s, ss, d)
			return true, nil
		}
		t.wakeAt(d.at)
		group = d
	}
	if s.IsGroup() {
		for _, c := range s.Children {
			cc, r := t.visit(c, group)
			changed = changed || cc
			ready = append(ready, r...)
			if s.ChildMode == v1alpha1.WorkflowModeStep && len(r) > 0 {
				break
			}
		}
		return t.aggregate(s) || changed, ready
	}
	if ss.Phase == v1alpha1.WorkflowStepPhaseSuspending {
		if ss.ResumeTime == nil {
			return changed, nil
		}
		if t.now.Before(ss.ResumeTime.Time) {
			t.wakeAt(ss.ResumeTime.Time)
			return changed, nil
		}
		// A timed suspend ran out: resumed by itself.
		resumeStep(ss)
		changed = true
	}
	if ss.NextAttemptTime != nil {
		if t.now.Before(ss.NextAttemptTime.Time) {
			t.wakeAt(ss.NextAttemptTime.Time)
			return changed, nil
		}
	}
	if t.evaluated[s.Name] {
		return changed, nil
	}
	t.evaluated[s.Name] = true
	return changed, []*pending{t.request(s, ss)}
}

// shouldRun decides a step's if. A ConditionError reason with run=true
// means the condition could not be evaluated.
func (t *tick) shouldRun(s *graph.Step) (run bool, reason, msg string) {
	cond := strings.TrimSpace(s.Spec.If)
	switch cond {
	case "always":
		return true, "", ""
	case "":
		if up := t.failedUpstream(s); up != "" {
			return false, ReasonUpstreamNotSucceeded, fmt.Sprintf("step %q did not succeed", up)
		}
		return true, "", ""
	}
	scope, err := t.conditionScope(s)
	if err != nil {
		return true, ReasonCondition, conditionError(s, err)
	}
	ok, err := t.in.Evaluator.Condition(cond, scope)
	if errors.Is(err, eval.ErrInterrupted) {
		return false, reasonConditionInterrupted, ""
	}
	if err != nil {
		return true, ReasonCondition, conditionError(s, err)
	}
	if !ok {
		return false, ReasonSkip, fmt.Sprintf("if %s is false", cond)
	}
	return true, "", ""
}

// reasonConditionInterrupted is shouldRun's answer when the evaluator could
// not evaluate the if for reasons of its own (its worker process died):
// decide again later.
const reasonConditionInterrupted = "conditionInterrupted"

// conditionError names the step and its definition (step type) around an
// error of its if expression, which names the expression itself.
func conditionError(s *graph.Step, err error) string {
	if s.Spec.Type == "" {
		return fmt.Sprintf("step %q: %v", s.Name, err)
	}
	return fmt.Sprintf("step %q (definition %q): %v", s.Name, s.Spec.Type, err)
}

// failedUpstream names a step this one transitively waits for that failed
// or was skipped because something before it failed.
func (t *tick) failedUpstream(s *graph.Step) string {
	seen := map[*graph.Step]bool{}
	var walk func(*graph.Step) string
	walk = func(x *graph.Step) string {
		for _, d := range x.Deps {
			if seen[d] {
				continue
			}
			seen[d] = true
			ds := statusOf(t.st, d)
			if ds != nil && (ds.Phase == v1alpha1.WorkflowStepPhaseFailed ||
				(ds.Phase == v1alpha1.WorkflowStepPhaseSkipped && ds.Reason == ReasonUpstreamNotSucceeded)) {
				return d.Name
			}
			if n := walk(d); n != "" {
				return n
			}
		}
		return ""
	}
	return walk(s)
}

// conditionScope is what an if expression sees: status.<step>, inputs.*,
// context.*.
func (t *tick) conditionScope(s *graph.Step) (map[string]any, error) {
	status := map[string]any{}
	for _, x := range t.g.All() {
		phase, reason, msg := "pending", "", ""
		if xs := statusOf(t.st, x); xs != nil {
			phase, reason, msg = string(xs.Phase), xs.Reason, xs.Message
		}
		status[x.Name] = map[string]any{
			"phase": phase, "reason": reason, "message": msg,
			"succeeded": phase == string(v1alpha1.WorkflowStepPhaseSucceeded),
			"failed":    phase == string(v1alpha1.WorkflowStepPhaseFailed),
			"skipped":   phase == string(v1alpha1.WorkflowStepPhaseSkipped),
			"timeout":   reason == ReasonTimeout,
		}
	}
	inputs, err := t.resolveInputs(s, nil)
	if err != nil {
		inputs = map[string]any{}
	}
	return map[string]any{"status": status, "inputs": inputs, "context": t.stepContext(s, "")}, nil
}

func (t *tick) start(ss *v1alpha1.StepStatus, s *graph.Step) {
	ss.Phase = v1alpha1.WorkflowStepPhaseRunning
	ss.Reason, ss.Message = "", ""
	if ss.Attempt == 0 {
		ss.Attempt = 1
	}
	ss.ID = t.stepID(s.Name, ss.Attempt)
	ss.FirstExecuteTime = t.metaNow()
	ss.LastExecuteTime = t.metaNow()
}

func (t *tick) finish(ss *v1alpha1.StepStatus, phase v1alpha1.WorkflowStepPhase, reason, msg string) {
	// summarize bounds the message with every other one at the end of
	// the tick.
	ss.Phase, ss.Reason, ss.Message = phase, reason, msg
	ss.NextAttemptTime, ss.ResumeTime = nil, nil
	ss.LastExecuteTime = t.metaNow()
}

// deadline is when a step times out and why: its own timeout, counted
// from its first execution, or its group's.
type deadline struct {
	at  time.Time
	why string
}

// deadline is the step's own deadline or its group's, whichever is first.
func (t *tick) deadline(s *graph.Step, ss *v1alpha1.StepStatus, group deadline) deadline {
	d := group
	if s.Spec.Timeout != "" {
		if to, err := time.ParseDuration(s.Spec.Timeout); err == nil {
			own := ss.FirstExecuteTime.Add(to)
			if d.at.IsZero() || own.Before(d.at) {
				d = deadline{at: own, why: fmt.Sprintf("its timeout of %s ran out", s.Spec.Timeout)}
			}
		}
	}
	return d
}

// timeout fails a step whose deadline d passed, and the unfinished
// sub-steps of a group. A hold does not stop the clock: a suspended step
// times out too, and says so.
func (t *tick) timeout(s *graph.Step, ss *v1alpha1.StepStatus, d deadline) {
	msg := "timed out: " + d.why
	if ss.Phase == v1alpha1.WorkflowStepPhaseSuspending {
		msg += " while it was suspended"
	}
	t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, ReasonTimeout, msg)
	t.attemptFailed(s, ss.ID, ss, nil)
	for _, c := range s.Children {
		cs := t.ensure(c)
		if finished(cs.Phase) {
			continue
		}
		if cs.Phase == v1alpha1.WorkflowStepPhasePending {
			t.finish(cs, v1alpha1.WorkflowStepPhaseSkipped, ReasonSkip, "its step group timed out")
			continue
		}
		t.finish(cs, v1alpha1.WorkflowStepPhaseFailed, ReasonTimeout, fmt.Sprintf("its step group %q timed out", s.Name))
		t.attemptFailed(c, cs.ID, cs, nil)
	}
}

// aggregate sets a group's phase from its sub-steps.
func (t *tick) aggregate(s *graph.Step) bool {
	ss := t.ensure(s)
	before := *ss
	all, suspending := true, false
	var failed *v1alpha1.StepStatus
	for _, c := range s.Children {
		cs := statusOf(t.st, c)
		if cs == nil || !finished(cs.Phase) {
			all = false
		}
		if cs != nil && cs.Phase == v1alpha1.WorkflowStepPhaseFailed && failed == nil {
			failed = cs
		}
		if cs != nil && cs.Phase == v1alpha1.WorkflowStepPhaseSuspending {
			suspending = true
		}
	}
	switch {
	case all && failed != nil:
		t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, ReasonSubStepFailed,
			fmt.Sprintf("sub-step %q failed (%s): %s", failed.Name, failed.Reason, failed.Message))
	case all:
		t.finish(ss, v1alpha1.WorkflowStepPhaseSucceeded, "", "")
	case suspending:
		ss.Phase = v1alpha1.WorkflowStepPhaseSuspending
	default:
		ss.Phase = v1alpha1.WorkflowStepPhaseRunning
	}
	return ss.Phase != before.Phase || ss.Message != before.Message
}

// request builds the evaluation of a leaf step.
func (t *tick) request(s *graph.Step, ss *v1alpha1.StepStatus) *pending {
	p := &pending{step: s}
	fail := func(reason, msg string) *pending {
		t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, reason, msg)
		t.attemptFailed(s, ss.ID, ss, nil)
		p.early = true
		return p
	}
	def, err := t.in.Definitions.Lookup(s.Spec.Type)
	if err != nil {
		return fail(ReasonDefinitionNotFound, fmt.Sprintf("step %q: unknown step type %q: %v", s.Name, s.Spec.Type, err))
	}
	props := map[string]any{}
	if raw := s.Spec.Properties; raw != nil && len(raw.Raw) > 0 {
		if err := json.Unmarshal(raw.Raw, &props); err != nil {
			return fail(eval.ReasonParameter, fmt.Sprintf("step %q: properties are not a JSON object: %v", s.Name, err))
		}
	}
	inputs, err := t.resolveInputs(s, ss)
	if err != nil {
		return fail(ReasonInput, fmt.Sprintf("step %q: %v", s.Name, err))
	}
	for _, in := range s.Spec.Inputs {
		if in.ParameterKey != "" {
			setPath(props, in.ParameterKey, inputs[in.From])
		}
	}
	p.req = eval.Request{
		Definition: def,
		Parameters: props,
		Context:    t.stepContext(s, ss.ID),
		Step: op.Step{RunUID: string(t.in.Run.UID), RunName: t.in.Run.Name, Namespace: t.in.Run.Namespace,
			StepName: s.Name, StepID: ss.ID, ServiceAccount: t.in.ServiceAccount},
		Env:    op.Env{Log: t.in.Logs},
		Runner: t.in.Ops,
		// What the tick reads from the evaluated template is read by the
		// evaluator, which may be in another process.
		Data: t.debug(),
	}
	for _, o := range s.Spec.Outputs {
		p.req.Outputs = append(p.req.Outputs, o.ValueFrom)
	}
	if t.in.Journal != nil {
		// What this evaluation sees of the run's variables, for a retry
		// from this step (RetryFrom); nothing when the run has none. It
		// never fails the step: one too large to keep is marked unknown,
		// and a retry from the step is refused instead.
		t.in.Journal.SnapshotVars(ss.ID, t.vars)
		p.req.Env.Vars = t.in.Journal
		resumed := append([]string(nil), ss.Resumed...)
		p.req.Runner = t.in.Journal.RunnerResuming(t.in.Ops, func(path string) bool {
			for _, r := range resumed {
				if r == path {
					return true
				}
			}
			return false
		})
	}
	return p
}

func (t *tick) stepContext(s *graph.Step, id string) map[string]any {
	c := make(map[string]any, len(t.runCtx)+4)
	for k, v := range t.runCtx {
		c[k] = v
	}
	c["name"], c["namespace"], c["stepName"] = t.in.Run.Name, t.in.Run.Namespace, s.Name
	if id != "" {
		c["stepSessionID"] = id
	}
	return c
}

// resolveInputs returns the step's input values by name: those recorded
// when it first ran, else the outputs of the steps producing them (and then
// records them).
func (t *tick) resolveInputs(s *graph.Step, ss *v1alpha1.StepStatus) (map[string]any, error) {
	out := map[string]any{}
	if len(s.Spec.Inputs) == 0 {
		return out, nil
	}
	if ss != nil && len(ss.Inputs) > 0 {
		for _, in := range ss.Inputs {
			out[in.Name] = decodeJSON(in.Value)
		}
		return out, nil
	}
	var recorded []v1alpha1.StepOutputValue
	for _, in := range s.Spec.Inputs {
		v, ok := t.output(in.From)
		if !ok {
			return nil, fmt.Errorf("input %q is not available: no finished step has output it", in.From)
		}
		out[in.From] = decodeJSON(v)
		recorded = append(recorded, v1alpha1.StepOutputValue{Name: in.From, Value: v})
	}
	if ss != nil {
		if err := t.boundInputs(ss, recorded); err != nil {
			return nil, err
		}
		ss.Inputs = recorded
	}
	return out, nil
}

func (t *tick) output(name string) (*apiextensionsv1.JSON, bool) {
	for _, x := range t.g.All() {
		if xs := statusOf(t.st, x); xs != nil && xs.Phase == v1alpha1.WorkflowStepPhaseSucceeded {
			for _, o := range xs.Outputs {
				if o.Name == name {
					return o.Value, true
				}
			}
		}
	}
	return nil, false
}

func decodeJSON(v *apiextensionsv1.JSON) any {
	if v == nil || len(v.Raw) == 0 {
		return nil
	}
	var out any
	if err := json.Unmarshal(v.Raw, &out); err != nil {
		return nil
	}
	return out
}

// setPath sets a dotted key ("a.b.c") in a nested map.
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}
