package engine

import (
	"crypto/sha256"
	"encoding/hex"
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

// StepID is the id of one attempt of a step.
func StepID(runUID string, restarts int32, step string, attempt int32) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%s/%d", runUID, restarts, step, attempt)))
	return step + "-" + hex.EncodeToString(h[:5])
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
	if st.Terminated {
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
		case st.Suspend || anySuspending:
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
	st.Message = truncate(st.Message, MaxMessageBytes)
	t.setConditions()
}

func (t *tick) setConditions() {
	st := t.st
	gen := t.in.Run.Generation
	st.ObservedGeneration = gen
	cond := func(typ string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: gen, LastTransitionTime: t.metaNow(),
		})
	}
	phase := string(st.Phase)
	if phase == "" {
		phase = "Initializing"
	}
	reason := upperFirst(phase)
	cond(v1alpha1.ConditionSucceeded, st.Phase == v1alpha1.WorkflowRunSucceeded, reason, st.Message)
	cond(v1alpha1.ConditionFailed, st.Phase == v1alpha1.WorkflowRunFailed || st.Phase == v1alpha1.WorkflowRunTerminated, reason, st.Message)
	cond(v1alpha1.ConditionSuspended, st.Phase == v1alpha1.WorkflowRunSuspending, reason, st.Message)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
