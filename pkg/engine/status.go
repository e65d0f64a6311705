package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/graph"
)

// Step reasons, beside the evaluator's (eval.Reason*).
const (
	ReasonWait                 = "Wait"
	ReasonError                = "Error"
	ReasonFailedAfterRetries   = "FailedAfterRetries"
	ReasonTimeout              = "Timeout"
	ReasonSubStepFailed        = "SubStepFailed"
	ReasonTerminate            = "Terminate"
	ReasonSkip                 = "Skip"
	ReasonUpstreamNotSucceeded = "UpstreamNotSucceeded"
	ReasonDefinitionNotFound   = "DefinitionNotFound"
	ReasonInput                = "InputError"
	ReasonOutput               = "OutputError"
	ReasonCondition            = "ConditionError"
	ReasonSuspend              = "Suspend"
	ReasonJournal              = "JournalError"
	// ReasonHeld: a step suspended by the operator before it started
	// (SuspendStep); it starts once resumed.
	ReasonHeld = "Held"
	// ReasonWaitSuspend: a step suspended by the operator while it waited
	// on a condition (reason Wait); SREWorks' WAITING_SUSPEND.
	ReasonWaitSuspend = "WaitSuspend"
)

func (t *tick) metaNow() metav1.Time { return metav1.NewTime(t.now.Truncate(time.Second)) }

// ceilSecond rounds a time up to a whole second, so timers never fire early
// once the API server has dropped the fraction.
func ceilSecond(tm time.Time) time.Time {
	if tr := tm.Truncate(time.Second); !tr.Equal(tm) {
		return tr.Add(time.Second)
	}
	return tm
}

// StepIDLength is the length of a step attempt's id, as KubeVela's
// context.stepSessionID (ten random lowercase characters).
const StepIDLength = 10

// StepID is the id of one attempt of a step, the template's
// context.stepSessionID: StepIDLength lowercase letters and digits starting
// with a letter, so a DNS-1123 (and DNS-1035) label and a label value,
// which templates name objects after (KubeVela's addon-operation names its
// Job "<run>-<stepSessionID>"), whatever the step is called. It is not
// random but a hash of the run's UID, its restart count, the step's name
// and the attempt number: an attempt evaluated again after its status
// write was lost gets the same id, so finds its journal entries and sends
// the same Idempotency-Keys. The status keeps the id it started with, so
// ids stored by an earlier version (STEPNAME-<hex>) stay as they are.
func StepID(runUID string, restarts int32, step string, attempt int32) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%s/%d", runUID, restarts, step, attempt)))
	const letters, digits = "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz0123456789"
	id := make([]byte, StepIDLength)
	id[0] = letters[int(h[0])%len(letters)]
	// 9 base-36 digits from 64 bits of the hash: about 51 bits in all.
	n := binary.BigEndian.Uint64(h[1:9])
	for i := StepIDLength - 1; i > 0; i-- {
		id[i] = digits[n%uint64(len(digits))]
		n /= uint64(len(digits))
	}
	return string(id)
}

// What status.suspendState says while status.suspend is true.
const (
	// SuspendStateOperator: the run is suspended from outside (Suspend
	// with no step, the CLI, the REST API, or a tool that sets
	// status.suspend as KubeVela's vela CLI does); nothing is evaluated
	// until a resume.
	SuspendStateOperator = "Operator"
	// SuspendStateSteps: only suspending steps hold the run (a #Suspend,
	// a step suspended or held by the operator); its other steps go on.
	SuspendStateSteps = "Steps"
)

// SuspendedFromOutside reports whether st was suspended from outside:
// status.suspend set by an operation or a tool, not by the engine because
// a step is suspending. A status.suspend with no suspendState (a tool's,
// or one written before the engine set it for steps) is from outside.
func SuspendedFromOutside(st *v1alpha1.WorkflowRunStatus) bool {
	return st.Suspend && st.SuspendState != SuspendStateSteps
}

// settleSuspend makes status.suspend true while the run is suspended, from
// outside or by a suspending step, as KubeVela's is, and suspendState say
// which; both are cleared once neither holds it or it is finished.
func settleSuspend(st *v1alpha1.WorkflowRunStatus) {
	switch {
	case st.Finished:
		st.Suspend, st.SuspendState = false, ""
	case SuspendedFromOutside(st):
		st.SuspendState = SuspendStateOperator
	case stepsSuspending(st):
		st.Suspend, st.SuspendState = true, SuspendStateSteps
	default:
		st.Suspend, st.SuspendState = false, ""
	}
}

// stepsSuspending reports whether a step or sub-step of st is suspending.
// A group counts only when it is held: otherwise its phase follows its
// sub-steps, and is brought up to date by the next tick.
func stepsSuspending(st *v1alpha1.WorkflowRunStatus) bool {
	found := false
	eachStep(st, func(ss *v1alpha1.StepStatus) {
		if ss.Phase == v1alpha1.WorkflowStepPhaseSuspending && (ss.Type != graph.StepGroup || held(ss)) {
			found = true
		}
	})
	return found
}

func (t *tick) stepID(name string, attempt int32) string {
	return StepID(string(t.in.Run.UID), t.st.RestartCount, name, attempt)
}

// status returns the status of a step or sub-step, nil if it has none yet.
func statusOf(st *v1alpha1.WorkflowRunStatus, s *graph.Step) *v1alpha1.StepStatus {
	if s.Parent == nil {
		for i := range st.Steps {
			if st.Steps[i].Name == s.Name {
				return &st.Steps[i].StepStatus
			}
		}
		return nil
	}
	for i := range st.Steps {
		if st.Steps[i].Name == s.Parent.Name {
			subs := st.Steps[i].SubStepsStatus
			for j := range subs {
				if subs[j].Name == s.Name {
					return &subs[j]
				}
			}
		}
	}
	return nil
}

// ensure returns the step's status, creating it (pending) if needed.
func (t *tick) ensure(s *graph.Step) *v1alpha1.StepStatus { return ensureStatus(t.st, s) }

// ensureStatus returns the status of a step or sub-step in st, adding a
// pending one (and its group's) if it has none yet.
func ensureStatus(st *v1alpha1.WorkflowRunStatus, s *graph.Step) *v1alpha1.StepStatus {
	if ss := statusOf(st, s); ss != nil {
		return ss
	}
	ss := v1alpha1.StepStatus{Name: s.Name, Type: s.Spec.Type, Phase: v1alpha1.WorkflowStepPhasePending}
	if s.Parent == nil {
		st.Steps = append(st.Steps, v1alpha1.WorkflowStepStatus{StepStatus: ss})
		return &st.Steps[len(st.Steps)-1].StepStatus
	}
	ensureStatus(st, s.Parent)
	for i := range st.Steps {
		if st.Steps[i].Name == s.Parent.Name {
			st.Steps[i].SubStepsStatus = append(st.Steps[i].SubStepsStatus, ss)
			return &st.Steps[i].SubStepsStatus[len(st.Steps[i].SubStepsStatus)-1]
		}
	}
	panic("unreachable: parent status was just ensured")
}

func finished(p v1alpha1.WorkflowStepPhase) bool {
	switch p {
	case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed,
		v1alpha1.WorkflowStepPhaseSkipped, v1alpha1.WorkflowStepPhaseStopped:
		return true
	}
	return false
}

// summarize sets the run's phase, message, end time and conditions from
// its steps.
func (t *tick) summarize() {
	st := t.st
	t.boundMessages()
	outside := SuspendedFromOutside(st)
	if rollingBack(st.Phase) {
		// compensate.go decided the phase (rollback).
	} else if st.Terminated {
		st.Phase = v1alpha1.WorkflowRunTerminated
		st.Finished = true
	} else if !st.Finished && t.g != nil {
		all, failed, anySuspending, anyStarted := true, "", false, false
		for _, s := range t.g.Steps {
			ss := statusOf(st, s)
			if ss == nil {
				all = false
				continue
			}
			anyStarted = true
			if !finished(ss.Phase) {
				all = false
			}
			if ss.Phase == v1alpha1.WorkflowStepPhaseFailed && failed == "" {
				failed = fmt.Sprintf("step %q failed: %s", ss.Name, ss.Message)
			}
			if ss.Phase == v1alpha1.WorkflowStepPhaseSuspending {
				anySuspending = true
			}
		}
		switch {
		case all && failed != "":
			st.Phase, st.Message, st.Finished = v1alpha1.WorkflowRunFailed, failed, true
		case all:
			st.Phase, st.Message, st.Finished = v1alpha1.WorkflowRunSucceeded, "", true
		case outside || anySuspending:
			st.Phase = v1alpha1.WorkflowRunSuspending
		case !anyStarted:
			st.Phase = v1alpha1.WorkflowRunInitializing
		default:
			st.Phase = v1alpha1.WorkflowRunExecuting
		}
		if !all && st.Phase != v1alpha1.WorkflowRunSuspending {
			st.Message = ""
		}
	}
	if st.Finished && st.EndTime.IsZero() {
		st.EndTime = t.metaNow()
	}
	if t.g != nil {
		st.Progress = progress(st, t.g)
	}
	setDuration(st)
	st.Message = truncate(st.Message, MaxMessageBytes)
	settleSuspend(st)
	t.setConditions()
}

// progress is "done/all" of the graph's top-level steps, what kubectl get
// -o wide shows as STEPS.
func progress(st *v1alpha1.WorkflowRunStatus, g *graph.Graph) string {
	done := 0
	for _, s := range g.Steps {
		if ss := statusOf(st, s); ss != nil && finished(ss.Phase) {
			done++
		}
	}
	return fmt.Sprintf("%d/%d", done, len(g.Steps))
}

// setDuration sets how long a finished run took, in whole seconds as its
// start and end times are; an unfinished run has none.
func setDuration(st *v1alpha1.WorkflowRunStatus) {
	if !st.Finished || st.StartTime.IsZero() || st.EndTime.IsZero() {
		st.Duration = nil
		return
	}
	st.Duration = &metav1.Duration{Duration: max(st.EndTime.Sub(st.StartTime.Time), 0)}
}

func (t *tick) setConditions() {
	t.st.ObservedGeneration = t.in.Run.Generation
	setConditions(t.st, t.in.Run.Generation, t.metaNow(), t.invalidErr)
}

// Reasons of a run's Ready condition.
const (
	ReasonValid   = "Valid"
	ReasonInvalid = "Invalid"
)

// setConditions sets the run's four conditions from its phase: Succeeded,
// Failed (failed or terminated) and Suspended, each with the phase as
// reason, and Ready, False when invalid says why the spec cannot run or
// a step failed for want of its definition.
func setConditions(st *v1alpha1.WorkflowRunStatus, gen int64, now metav1.Time, invalid error) {
	cond := func(typ string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: gen, LastTransitionTime: now,
		})
	}
	switch missing := missingDefinition(st); {
	case invalid != nil:
		cond(v1alpha1.ConditionReady, false, ReasonInvalid, st.Message)
	case missing != nil:
		cond(v1alpha1.ConditionReady, false, ReasonDefinitionNotFound, missing.Message)
	default:
		cond(v1alpha1.ConditionReady, true, ReasonValid, "")
	}
	phase := string(st.Phase)
	if phase == "" {
		phase = "Initializing"
	}
	reason := upperFirst(phase)
	cond(v1alpha1.ConditionSucceeded, st.Phase == v1alpha1.WorkflowRunSucceeded, reason, st.Message)
	cond(v1alpha1.ConditionFailed, st.Phase == v1alpha1.WorkflowRunFailed || st.Phase == v1alpha1.WorkflowRunTerminated ||
		rollingBack(st.Phase), reason, st.Message)
	cond(v1alpha1.ConditionSuspended, st.Phase == v1alpha1.WorkflowRunSuspending, reason, st.Message)
}

// missingDefinition is the first step or sub-step that failed because its
// type names no definition, or nil.
func missingDefinition(st *v1alpha1.WorkflowRunStatus) *v1alpha1.StepStatus {
	for i := range st.Steps {
		if st.Steps[i].Reason == ReasonDefinitionNotFound {
			return &st.Steps[i].StepStatus
		}
		for j := range st.Steps[i].SubStepsStatus {
			if sub := &st.Steps[i].SubStepsStatus[j]; sub.Reason == ReasonDefinitionNotFound {
				return sub
			}
		}
	}
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
