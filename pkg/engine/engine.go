package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// DebugAnnotation on a run keeps each step attempt's evaluated value.
const DebugAnnotation = "workflowrun.oam.dev/debug"

// Definitions resolves a step type to its definition.
type Definitions interface {
	Lookup(stepType string) (eval.Definition, error)
}

// DefinitionMap is a fixed set of definitions, by type.
type DefinitionMap map[string]eval.Definition

// Lookup implements Definitions.
func (m DefinitionMap) Lookup(t string) (eval.Definition, error) {
	d, ok := m[t]
	if !ok {
		return eval.Definition{}, fmt.Errorf("no WorkflowStepDefinition %q", t)
	}
	return d, nil
}

// Debug keeps the evaluated value of step attempts of runs annotated with
// DebugAnnotation.
type Debug interface {
	StepValue(step, stepID string, value any)
}

// Evaluator evaluates steps and if conditions: an *eval.Evaluator in this
// process (tests, benchmarks, `step run`), or a sandbox.Pool of worker
// processes that can be stopped when a template runs away (the controller).
type Evaluator interface {
	Evaluate(ctx context.Context, req eval.Request) eval.Outcome
	Condition(expr string, scope map[string]any) (bool, error)
	// ValidateParameters checks steps' properties against their
	// definitions' parameters: a run's first tick does, before any step.
	ValidateParameters(checks []eval.ParameterCheck) error
}

var _ Evaluator = (*eval.Evaluator)(nil)

// Input is everything one tick reads.
type Input struct {
	// Run supplies metadata, spec.context and the current status. Tick
	// does not modify it.
	Run *v1alpha1.WorkflowRun
	// Steps and Mode are the run's steps, already resolved from
	// spec.workflowSpec or the Workflow named by spec.workflowRef.
	Steps []v1alpha1.WorkflowStep
	Mode  *v1alpha1.WorkflowExecuteMode
	// ServiceAccount is the identity the run's op calls act as, resolved
	// by the caller (the run's spec.serviceAccountName, its Workflow's,
	// else the default); every op.Step of the tick carries it.
	ServiceAccount string
	Definitions    Definitions
	Evaluator      Evaluator
	// Ops runs op calls; the tick wraps it with Journal's exactly-once rule.
	Ops     op.Runner
	Journal *journal.Journal
	Now     func() time.Time
	Logs    op.LogSink
	Debug   Debug
	// Parallelism bounds the steps evaluated at once in DAG mode (default 8).
	Parallelism int
	// Limiter, when set, paces the starts of steps by type (ratelimit.go);
	// nil starts every step when it is due.
	Limiter Limiter
	// Orchestration is the run's, with its Workflow's fields under it, as
	// the caller resolved them; nil means the run's own spec. Its
	// onFailure and onTerminate decide whether the run rolls back
	// (compensate.go).
	Orchestration *v1alpha1.Orchestration
}

// Result is the outcome of a tick.
type Result struct {
	Status v1alpha1.WorkflowRunStatus
	// WakeAt is when the run next needs a tick if nothing else happens: a
	// timed suspend ends, a timeout or a retry is due, a wait is polled.
	// Zero means only an outside event (resume, ...) moves the run.
	WakeAt time.Time
	// Failed are the step attempts that failed in this tick, with what
	// their last evaluation had, for debugging after the fact (whether or
	// not the run is annotated with DebugAnnotation). nil when none did.
	Failed []FailedAttempt
}

// FailedAttempt is a step attempt that failed: for good, or to be retried
// (Retry).
type FailedAttempt struct {
	Step, StepID, Definition string
	Reason, Message          string
	// Retry says another attempt of the step follows.
	Retry bool
	// Value is the evaluated template as plain data (eval.Outcome.Data): nil
	// when the attempt failed before it was evaluated (a timeout, an unknown
	// definition, an input not available) or evaluation got no value (the
	// template did not compile: Message names the CUE positions).
	Value any
}

// Tick advances the run as far as it can go now.
func Tick(ctx context.Context, in Input) (Result, error) {
	if in.Parallelism <= 0 {
		in.Parallelism = 8
	}
	if in.Now == nil {
		in.Now = time.Now
	}
	t := &tick{in: in, now: in.Now(), st: in.Run.Status.DeepCopy(), evaluated: map[string]bool{}}
	if t.st.StartTime.IsZero() {
		t.st.StartTime = t.metaNow()
	}
	g, err := graph.Build(in.Steps, in.Mode)
	if err != nil {
		t.invalid(err)
		return Result{Status: *t.st}, nil
	}
	t.g = g
	t.st.Mode = g.Mode
	// A run terminated but not finished is one TerminateRollingBack left
	// for this tick to roll back, if its onTerminate says so.
	if !t.st.Finished && (!t.st.Terminated || t.rollsBackOnTerminate()) && !SuspendedFromOutside(t.st) {
		t.retainJournal()
		if err := t.loadContext(); err != nil {
			t.invalid(err)
			return Result{Status: *t.st}, nil
		}
		switch err := t.checkProperties(); {
		case errors.Is(err, eval.ErrInterrupted):
			// The evaluator's trouble, not the properties': no step
			// begins now, and the check is done again shortly.
			t.wakeAt(t.now.Add(interruptedDelay))
		case err != nil:
			t.invalid(err)
			return Result{Status: *t.st}, nil
		default:
			if !t.st.Terminated {
				t.advance(ctx)
			}
			t.rollback(ctx)
		}
	}
	t.summarize()
	if in.Journal != nil {
		// Log lines that could not be saved do not hold the run up: a
		// status not written would leave every count in it (retries,
		// journal failures) where it was, and the tick would repeat.
		if err := in.Journal.Flush(ctx); err != nil && !errors.Is(err, journal.ErrLogsNotSaved) {
			return Result{}, fmt.Errorf("saving the journal of run %s/%s: %w", in.Run.Namespace, in.Run.Name, err)
		}
	}
	wake := t.wake
	if t.st.Finished || SuspendedFromOutside(t.st) {
		wake = time.Time{}
	}
	return Result{Status: *t.st, WakeAt: wake, Failed: t.failed}, nil
}

type tick struct {
	in     Input
	now    time.Time
	st     *v1alpha1.WorkflowRunStatus
	g      *graph.Graph
	wake   time.Time
	runCtx map[string]any
	// vars are the run's context variables set at run time as this tick
	// read them (part of runCtx): what its steps see, snapshotted per
	// attempt (journal.SnapshotVars).
	vars      map[string]any
	evaluated map[string]bool
	// terminateMsg is set once a step's template called #Terminate: the
	// run's message once the round's outcomes are recorded.
	terminateMsg *string
	// msgLimit is the bound of one step's message, from the number of
	// steps (messageLimit works it out once per tick).
	msgLimit int
	// invalidErr says why the run's spec cannot run, once invalid found
	// it: its Ready condition is False.
	invalidErr error
	// failed are the step attempts that failed in this tick (Result.Failed).
	failed []FailedAttempt
}

// wakeAt records that the run needs a tick at w.
func (t *tick) wakeAt(w time.Time) {
	if w.IsZero() {
		return
	}
	if t.wake.IsZero() || w.Before(t.wake) {
		t.wake = w
	}
}

// invalid fails a run whose spec cannot run at all.
func (t *tick) invalid(err error) {
	t.st.Phase = v1alpha1.WorkflowRunFailed
	t.st.Message = truncate(err.Error(), MaxMessageBytes)
	t.st.Finished = true
	if t.st.EndTime.IsZero() {
		t.st.EndTime = t.metaNow()
	}
	setDuration(t.st)
	settleSuspend(t.st)
	t.invalidErr = err
	t.setConditions()
}

// retainJournal drops what the journal holds for attempts that the input
// status, the saved one, has abandoned: entries of retried, restarted and
// finished attempts, and variables set before the last restart. It is the
// only place entries are dropped, so a retry or restart whose status write
// is lost (a conflict, a crash) finds its old attempt's records still there.
// An unfinished step keeps its attempt's entries, and so does a step yet to
// start, under the id it will start with.
func (t *tick) retainJournal() {
	j := t.in.Journal
	if j == nil {
		return
	}
	j.Restarted(t.st.RestartCount)
	live := map[string]bool{}
	for _, s := range t.g.All() {
		ss := statusOf(t.st, s)
		switch {
		case ss == nil:
			live[t.stepID(s.Name, 1)] = true
		case !finished(ss.Phase):
			if ss.ID != "" {
				live[ss.ID] = true
			}
			live[t.stepID(s.Name, max(ss.Attempt, 1))] = true
		}
	}
	t.liveCompensations(live)
	j.Retain(func(id string) bool { return live[id] })
	// A finished attempt keeps its context snapshot while the status names
	// it: a retry from its step restores it (RetryFrom). Built only for a
	// journal that has snapshots (a run with variables).
	var named map[string]bool
	j.RetainSnapshots(func(id string) bool {
		if named == nil {
			named = map[string]bool{}
			eachStep(t.st, func(ss *v1alpha1.StepStatus) {
				if ss.ID != "" {
					named[ss.ID] = true
				}
			})
		}
		return live[id] || named[id]
	})
}

// loadContext merges spec.context with the variables set at run time.
func (t *tick) loadContext() error {
	t.runCtx = map[string]any{}
	if c := t.in.Run.Spec.Context; c != nil && len(c.Raw) > 0 {
		if err := json.Unmarshal(c.Raw, &t.runCtx); err != nil {
			return fmt.Errorf("spec.context is not a JSON object: %v", err)
		}
	}
	if t.in.Journal != nil {
		t.vars = t.in.Journal.Vars()
		for k, v := range t.vars {
			t.runCtx[k] = v
		}
	}
	return nil
}

// advance runs steps until nothing more can happen in this tick. Each leaf
// step is evaluated at most once per tick.
func (t *tick) advance(ctx context.Context) {
	for round := 0; round < 1000; round++ {
		changed, ready := t.collect()
		if len(ready) == 0 {
			if !changed {
				return
			}
			continue
		}
		t.evaluate(ctx, ready)
		if t.st.Terminated {
			return
		}
	}
}

// pending is a leaf step due for evaluation, with its request built.
type pending struct {
	step *graph.Step
	req  eval.Request
	out  eval.Outcome
	// early is set when the step ended before evaluation (bad input).
	early bool
}

// debug reports whether the run asks for its steps' evaluated values.
func (t *tick) debug() bool {
	return t.in.Debug != nil && t.in.Run.Annotations[DebugAnnotation] == "true"
}

func (t *tick) evaluate(ctx context.Context, ready []*pending) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, t.in.Parallelism)
	for _, p := range ready {
		if p.early {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(p *pending) {
			defer wg.Done()
			defer func() { <-sem }()
			p.out = t.in.Evaluator.Evaluate(ctx, p.req)
		}(p)
	}
	wg.Wait()
	for _, p := range ready {
		if !p.early {
			t.apply(p)
		}
	}
	if t.terminateMsg != nil {
		// A template called #Terminate: every other unfinished step is
		// stopped as Terminate stops them, and the run ends terminated
		// with the template's message.
		terminateRun(t.st, t.metaNow())
		t.st.Message = *t.terminateMsg
	}
}
