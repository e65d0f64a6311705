package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// Operations from outside (controller, CLI, REST API) are pure functions on
// a run's status (and, for context variables, its journal).
// The next Tick acts on what they changed. On a finished run, Resume,
// Suspend, Terminate and SetContext return ErrFinished; Restart and
// RetryFrom are how a finished run runs again.

// ErrFinished is returned by operations that make no sense on a finished run.
var ErrFinished = errors.New("the run is finished")

// ErrNotFinished is returned by operations that need a finished run (Retry,
// RetryFrom).
var ErrNotFinished = errors.New("the run is not finished")

// ErrReservedKey is returned by SetContext for a key the engine sets in
// every step's context itself (ReservedContextKeys).
var ErrReservedKey = errors.New("reserved context key")

// ErrNotSuspended is returned by a resume of a step that is not suspended.
var ErrNotSuspended = errors.New("the step is not suspended")

// ErrStepFinished is returned by a suspend of a finished step.
var ErrStepFinished = errors.New("the step is finished")

// ErrRolledBack refuses a retry from a step of a run that rolled back:
// what its steps did was undone, so only a retry from the start makes
// sense.
var ErrRolledBack = errors.New("the run rolled back")

// ErrNoStep is returned when an operation names a step the run does not have
// or that is not in the state the operation needs.
var ErrNoStep = errors.New("no such step")

func eachStep(st *v1alpha1.WorkflowRunStatus, fn func(*v1alpha1.StepStatus)) {
	for i := range st.Steps {
		fn(&st.Steps[i].StepStatus)
		for j := range st.Steps[i].SubStepsStatus {
			fn(&st.Steps[i].SubStepsStatus[j])
		}
	}
}

func findStep(st *v1alpha1.WorkflowRunStatus, name string) *v1alpha1.StepStatus {
	var out *v1alpha1.StepStatus
	eachStep(st, func(ss *v1alpha1.StepStatus) {
		if ss.Name == name && out == nil {
			out = ss
		}
	})
	return out
}

// Resume resumes the run (step == ""): it clears an outside suspend and
// resumes every suspending step; or it resumes one suspending step.
func Resume(st *v1alpha1.WorkflowRunStatus, step string) error {
	if st.Finished {
		return ErrFinished
	}
	resume := resumeStep
	// status.suspend stays true while a step still holds the run.
	defer settleSuspend(st)
	if step == "" {
		st.Suspend = false
		eachStep(st, func(ss *v1alpha1.StepStatus) {
			// A group is resumed through its sub-steps, unless it is
			// held (it has none started).
			if ss.Phase == v1alpha1.WorkflowStepPhaseSuspending && (ss.Type != graph.StepGroup || held(ss)) {
				resume(ss)
			}
		})
		return nil
	}
	ss := findStep(st, step)
	if ss == nil || ss.Phase != v1alpha1.WorkflowStepPhaseSuspending {
		return fmt.Errorf("%w: step %q is not suspending", ErrNoStep, step)
	}
	if ss.Type == graph.StepGroup {
		for i := range st.Steps {
			if st.Steps[i].Name == step {
				for j := range st.Steps[i].SubStepsStatus {
					if sub := &st.Steps[i].SubStepsStatus[j]; sub.Phase == v1alpha1.WorkflowStepPhaseSuspending {
						resume(sub)
					}
				}
			}
		}
	}
	resume(ss)
	return nil
}

// resumeStep makes a suspending step run again and records which #Suspend
// of its attempt was resumed, so it does not suspend again.
func resumeStep(ss *v1alpha1.StepStatus) {
	if held(ss) {
		// Never started: it starts once its dependencies are done.
		ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhasePending, "", ""
		return
	}
	ss.Phase = v1alpha1.WorkflowStepPhaseRunning
	ss.ResumeTime = nil
	if ss.SuspendedBy != "" {
		ss.Resumed = append(ss.Resumed, ss.SuspendedBy)
		ss.SuspendedBy = ""
	}
}

// Suspend suspends the run (step == "") until Resume, or one running step.
func Suspend(st *v1alpha1.WorkflowRunStatus, step string) error {
	if st.Finished {
		return ErrFinished
	}
	if step == "" {
		st.Suspend, st.SuspendState = true, SuspendStateOperator
		return nil
	}
	defer settleSuspend(st)
	ss := findStep(st, step)
	if ss == nil || ss.Phase != v1alpha1.WorkflowStepPhaseRunning {
		return fmt.Errorf("%w: step %q is not running", ErrNoStep, step)
	}
	suspend := func(s *v1alpha1.StepStatus) {
		reason := ReasonSuspend
		if s.Reason == ReasonWait {
			reason = ReasonWaitSuspend
		}
		s.Phase, s.Reason, s.Message = v1alpha1.WorkflowStepPhaseSuspending, reason, "suspended by the operator"
		s.ResumeTime, s.NextAttemptTime = nil, nil
	}
	if ss.Type == graph.StepGroup {
		// A group is suspended through its running sub-steps; its phase
		// follows them.
		n := 0
		for i := range st.Steps {
			if st.Steps[i].Name != step {
				continue
			}
			for j := range st.Steps[i].SubStepsStatus {
				if sub := &st.Steps[i].SubStepsStatus[j]; sub.Phase == v1alpha1.WorkflowStepPhaseRunning {
					suspend(sub)
					n++
				}
			}
		}
		if n == 0 {
			return fmt.Errorf("%w: step group %q has no running sub-step to suspend", ErrNoStep, step)
		}
		ss.Phase = v1alpha1.WorkflowStepPhaseSuspending
		return nil
	}
	suspend(ss)
	return nil
}

// Terminate stops the run (step == ""): unfinished steps fail with reason
// Terminate and the run ends terminated. With a step, only that step (and,
// for a group, its unfinished sub-steps) fails; the run goes on as after any
// failure. A finished run is left as it is (ErrFinished).
func Terminate(st *v1alpha1.WorkflowRunStatus, step string, now time.Time) error {
	if st.Finished {
		return ErrFinished
	}
	at := metav1.NewTime(now.Truncate(time.Second))
	stop := func(ss *v1alpha1.StepStatus) { terminateStep(ss, at) }
	if step == "" && st.Phase == v1alpha1.WorkflowRunRollingBack {
		terminateRollback(st, at)
		return nil
	}
	if step == "" {
		terminateRun(st, at)
		return nil
	}
	ss := findStep(st, step)
	if ss == nil || finished(ss.Phase) {
		return fmt.Errorf("%w: step %q is not running", ErrNoStep, step)
	}
	for i := range st.Steps {
		if st.Steps[i].Name == step {
			for j := range st.Steps[i].SubStepsStatus {
				stop(&st.Steps[i].SubStepsStatus[j])
			}
		}
	}
	stop(ss)
	return nil
}

// terminateRun fails every unfinished step with reason Terminate and ends
// the run terminated.
func terminateRun(st *v1alpha1.WorkflowRunStatus, at metav1.Time) {
	eachStep(st, func(ss *v1alpha1.StepStatus) { terminateStep(ss, at) })
	st.Terminated, st.Finished, st.Suspend, st.SuspendState = true, true, false, ""
	st.Phase = v1alpha1.WorkflowRunTerminated
	st.EndTime = at
	setDuration(st)
	if _, all, ok := strings.Cut(st.Progress, "/"); ok {
		done := 0
		for _, ss := range st.Steps {
			if finished(ss.Phase) {
				done++
			}
		}
		st.Progress = fmt.Sprintf("%d/%s", done, all)
	}
	// No tick follows a finished run: its conditions are set here.
	setConditions(st, st.ObservedGeneration, at, nil)
}

func terminateStep(ss *v1alpha1.StepStatus, at metav1.Time) {
	if finished(ss.Phase) {
		return
	}
	ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseFailed, ReasonTerminate, "terminated"
	ss.ResumeTime, ss.NextAttemptTime = nil, nil
	ss.LastExecuteTime = at
}

// Restart runs the run again from the beginning: every step status goes,
// and the restart count grows, so every attempt gets a new id. The journal
// is not touched here: the next tick, reading the saved status, drops the
// old attempts' entries and the variables set before the restart
// (journal.Retain, journal.Restarted). Dropping them before the status is
// saved would let a lost status write re-send the old attempts' effects.
// The callback's status stays too: the transitions it has not been told
// yet are still owed.
func Restart(st *v1alpha1.WorkflowRunStatus) {
	restarts := st.RestartCount + 1
	// The journal's ConfigMap stays, with the old attempts' records until
	// then.
	*st = v1alpha1.WorkflowRunStatus{RestartCount: restarts, Conditions: st.Conditions, ContextBackend: st.ContextBackend,
		Callback: st.Callback}
}

// Retry runs a finished run (succeeded, failed, terminated) again from its
// first step with its original configuration: Restart. An unfinished run
// is refused with ErrNotFinished.
func Retry(st *v1alpha1.WorkflowRunStatus) error {
	if !st.Finished {
		return fmt.Errorf("%w (it is %s)", ErrNotFinished, phaseOf(st))
	}
	Restart(st)
	return nil
}

// RetryFrom runs step of a finished run again, and every step after or
// downstream of it; steps before it keep their results. The step runs with
// what its last attempt had: its input values (StepStatus.Inputs, kept)
// and the run context variables it saw, which j holds as the snapshot of
// that attempt (journal.SnapshotVars): the run's variables become that
// snapshot, or none if the attempt saw none, so the step and the ones
// after it see the context the step saw. j may be nil (no journal: the
// variables are left alone); the caller saves it before the status, as for
// SetContext. A step that never started leaves the variables as they
// are; a step group restores what its first sub-step that started saw.
// A step whose snapshot the journal did not keep (too large for its
// bound) is refused with an error wrapping journal.ErrSnapshotNotKept,
// changing nothing.
// Each re-run step starts a new attempt, with a new id, so its
// effects are sent again (and with a new Idempotency-Key); the next tick
// drops the entries of the attempts it abandons, once this status is saved
// (see Restart). An unfinished run is refused with ErrNotFinished.
func RetryFrom(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, step string, j *journal.Journal) error {
	if !st.Finished {
		return fmt.Errorf("%w (it is %s): retry from step %q once it is finished, or terminate it first", ErrNotFinished, phaseOf(st), step)
	}
	if rollingBack(st.Phase) {
		return fmt.Errorf("retry from step %q: %w (%s), so what its steps did was undone: retry it from the start", step, ErrRolledBack, st.Phase)
	}
	s, ok := g.Step(step)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoStep, step)
	}
	if id := snapshotID(st, s); j != nil && id != "" {
		j.Restarted(st.RestartCount)
		vars, ok, err := j.SnapshotOf(id)
		if err != nil {
			return fmt.Errorf("retry from step %q: %w", step, err)
		}
		if ok || len(j.Vars()) > 0 {
			if err := j.RestoreVars(vars); err != nil {
				return fmt.Errorf("retry from step %q: restoring the context variables it saw: %w", step, err)
			}
		}
	}
	for _, d := range g.Downstream(step) {
		ss := findStep(st, d.Name)
		if ss == nil {
			continue
		}
		keepInputs := d.Name == step
		inputs := ss.Inputs
		*ss = v1alpha1.StepStatus{
			Name: ss.Name, Type: ss.Type, Phase: v1alpha1.WorkflowStepPhasePending,
			Attempt: ss.Attempt + 1,
		}
		if keepInputs {
			ss.Inputs = inputs
		}
	}
	st.Finished, st.Terminated, st.Suspend, st.SuspendState = false, false, false, ""
	st.EndTime, st.Duration = metav1.Time{}, nil
	st.Message = ""
	return nil
}

// snapshotID is the attempt whose context snapshot a retry from s
// restores: s's last attempt, or for a step group (which is not evaluated
// itself) its first sub-step's that started; "" if none started.
func snapshotID(st *v1alpha1.WorkflowRunStatus, s *graph.Step) string {
	if !s.IsGroup() {
		if ss := statusOf(st, s); ss != nil {
			return ss.ID
		}
		return ""
	}
	for _, c := range s.Children {
		if cs := statusOf(st, c); cs != nil && cs.ID != "" {
			return cs.ID
		}
	}
	return ""
}

// phaseOf names the run's phase for a message.
func phaseOf(st *v1alpha1.WorkflowRunStatus) string {
	if st.Phase == "" {
		return "not started"
	}
	return string(st.Phase)
}

// SetContext sets a run context variable, visible to the next evaluation of
// every step as context.<key>. It changes j in memory: the caller saves it
// (j.Flush) before it writes the status, so a resume written with it cannot
// outlive the variable.
func SetContext(st *v1alpha1.WorkflowRunStatus, j *journal.Journal, key string, value any) error {
	if st.Finished {
		return ErrFinished
	}
	if key == "" {
		return errors.New("a context variable needs a name")
	}
	if slices.Contains(ReservedContextKeys, key) {
		return fmt.Errorf("%w %q: the engine sets it in every step's context", ErrReservedKey, key)
	}
	// Variables set before the run's last restart are gone, even if no tick
	// has dropped them from the store yet.
	j.Restarted(st.RestartCount)
	return j.SetVar(key, value)
}

// ReservedContextKeys are the keys the engine sets in every step's context
// (context.name, ...); they win over run context variables of the same
// name, so SetContext refuses them.
var ReservedContextKeys = []string{"name", "namespace", "stepName", "stepSessionID"}

// Step operations with a message: the REST API's terminate, suspend and
// resume of one task. They act on the step whatever its state, and record
// msg (the operator's extMessage) on it when they change it:
//
//	step state          TerminateStep        SuspendStep             ResumeStep
//	------------------  -------------------  ----------------------  ---------------------
//	not started         fails it (Terminate) holds it: it does not   held: back to pending
//	                                         start until resumed
//	running             fails it             suspends it             ErrNotSuspended
//	suspended           fails it             no change but msg       resumes it
//	finished            no change, nil       ErrStepFinished         ErrNotSuspended
//
// A held step is one suspended before it started (reason Held);
// resumed, it starts once its dependencies are done, as any pending step.
// On a finished run TerminateStep changes nothing and returns nil; the
// others return ErrFinished. A resume of the whole run (Resume without a
// step) resumes held steps too.

// TerminateStep fails step (see the table above); for a group, its
// unfinished sub-steps too. The run goes on as after any failure.
func TerminateStep(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, step, msg string, now time.Time) error {
	if st.Finished {
		return nil
	}
	s, ok := g.Step(step)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoStep, step)
	}
	ss := ensureStatus(st, s)
	if finished(ss.Phase) {
		return nil
	}
	defer settleSuspend(st)
	at := metav1.NewTime(now.Truncate(time.Second))
	for _, c := range s.Children {
		if cs := statusOf(st, c); cs != nil {
			terminateStep(cs, at)
		}
	}
	terminateStep(ss, at)
	ss.ExtMessage = msg
	return nil
}

// SuspendStep suspends step, or holds it if it has not started (see the
// table above).
func SuspendStep(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, step, msg string) error {
	if st.Finished {
		return ErrFinished
	}
	s, ok := g.Step(step)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoStep, step)
	}
	ss := ensureStatus(st, s)
	defer settleSuspend(st)
	switch {
	case finished(ss.Phase):
		return fmt.Errorf("%w: step %q is %s", ErrStepFinished, step, ss.Phase)
	case ss.Phase == v1alpha1.WorkflowStepPhasePending:
		ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseSuspending, ReasonHeld, "held by the operator before it started"
	case ss.Phase == v1alpha1.WorkflowStepPhaseRunning:
		if err := Suspend(st, step); err != nil {
			return err
		}
		ss = statusOf(st, s)
	}
	ss.ExtMessage = msg
	return nil
}

// ResumeStep resumes a suspended or held step (see the table above).
func ResumeStep(st *v1alpha1.WorkflowRunStatus, g *graph.Graph, step, msg string) error {
	if st.Finished {
		return ErrFinished
	}
	s, ok := g.Step(step)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoStep, step)
	}
	ss := statusOf(st, s)
	if ss == nil || ss.Phase != v1alpha1.WorkflowStepPhaseSuspending {
		phase := v1alpha1.WorkflowStepPhasePending
		if ss != nil {
			phase = ss.Phase
		}
		return fmt.Errorf("%w: step %q is %s", ErrNotSuspended, step, phase)
	}
	if err := Resume(st, step); err != nil {
		return err
	}
	ss.ExtMessage = msg
	return nil
}

// held reports whether ss was suspended before it started: the engine
// does not start it until it is resumed.
func held(ss *v1alpha1.StepStatus) bool {
	return ss.Phase == v1alpha1.WorkflowStepPhaseSuspending && ss.Reason == ReasonHeld
}
