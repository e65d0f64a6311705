// Package callback turns a run's status changes into callback transitions
// and POSTs them.
//
// A transition (runStarted, stepSucceeded, …; v1alpha1.CallbackEvent) is
// derived by Transitions from the status before and after one status
// write of the controller, and recorded in status.callback.outbox by that
// same write (Record). Nothing is lost between the write and the
// delivery: a controller that dies after writing finds the transition in
// the outbox when it starts again. A delivered transition is removed
// from the outbox; one delivered but not yet removed when the controller
// died is sent again, with the same Idempotency-Key, so delivery is at
// least once and a receiver that honours the key sees each transition
// once.
//
//	status write (tick)          delivery (asynchronous)
//	  before, after ─► Transitions ─► outbox ─► POST ─► 2xx: removed, delivered
//	                                              └─► error: kept, lastError, backoff
//
// The key of a transition is the run's UID, the event and what makes it
// unique: the step attempt's id (which holds the attempt and the run's
// restart count) for a step event, the restart count for the run's own
// events, the time for a suspension or resume (which can happen any
// number of times). The key is stored with the transition, so a re-send
// carries the same one.
//
// The package is pure apart from Sender, which makes the POST.
package callback

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// MaxText bounds the messages a transition keeps in the outbox.
const MaxText = 1024

// DefaultMaxPending bounds the outbox when the caller gives no bound.
const DefaultMaxPending = 64

// Transitions returns the transitions from before to after, in the order
// they are sent: the run's start and resume, the steps' transitions in
// status order, then the run's suspension and end.
func Transitions(uid types.UID, before, after *v1alpha1.WorkflowRunStatus, now time.Time) []v1alpha1.CallbackTransition {
	b := builder{uid: uid, after: after, now: metav1.NewTime(now)}
	restarted := after.RestartCount != before.RestartCount
	if !after.StartTime.IsZero() && (before.StartTime.IsZero() || restarted) {
		b.run(v1alpha1.CallbackRunStarted, fmt.Sprintf("r%d", after.RestartCount))
	}
	// status.suspend as the callback last heard it, as the write before
	// this one left it (a suspend or resume from outside), and after it.
	heard := before.Suspend
	if before.Callback != nil {
		heard = before.Callback.Suspended
	}
	suspension := func(from, to bool) {
		switch {
		case from && !to && !after.Terminated:
			b.run(v1alpha1.CallbackRunResumed, fmt.Sprintf("t%d", now.UnixNano()))
		case !from && to && !after.Finished:
			b.run(v1alpha1.CallbackRunSuspended, fmt.Sprintf("t%d", now.UnixNano()))
		}
	}
	suspension(heard, before.Suspend)
	if before.Suspend && !after.Suspend {
		suspension(true, false)
	}
	old := map[string]*v1alpha1.StepStatus{}
	if !restarted {
		eachStep(before, func(name string, s *v1alpha1.StepStatus) { old[stepKey(name, s)] = s })
	}
	eachStep(after, func(name string, s *v1alpha1.StepStatus) {
		prev := old[stepKey(name, s)]
		b.step(name, prev, s)
	})
	if !before.Suspend && after.Suspend {
		suspension(false, true)
	}
	if after.Phase != before.Phase || restarted {
		if ev, ok := runEvent(after.Phase); ok {
			if ev == v1alpha1.CallbackRunRollingBack {
				// The run failed (or was terminated) and rolls back in
				// the same write: the failure is a transition too.
				fail := v1alpha1.CallbackRunFailed
				if after.Terminated {
					fail = v1alpha1.CallbackRunTerminated
				}
				if before.Phase != v1alpha1.WorkflowRunFailed && before.Phase != v1alpha1.WorkflowRunTerminated {
					b.run(fail, fmt.Sprintf("r%d", after.RestartCount))
				}
			}
			b.run(ev, fmt.Sprintf("r%d", after.RestartCount))
		}
	}
	return b.out
}

// runEvent is the event of a run entering phase p.
func runEvent(p v1alpha1.WorkflowRunPhase) (v1alpha1.CallbackEvent, bool) {
	switch p {
	case v1alpha1.WorkflowRunSucceeded, v1alpha1.WorkflowRunSkipped:
		return v1alpha1.CallbackRunSucceeded, true
	case v1alpha1.WorkflowRunFailed:
		return v1alpha1.CallbackRunFailed, true
	case v1alpha1.WorkflowRunTerminated:
		return v1alpha1.CallbackRunTerminated, true
	case v1alpha1.WorkflowRunRollingBack:
		return v1alpha1.CallbackRunRollingBack, true
	case v1alpha1.WorkflowRunRolledBack:
		return v1alpha1.CallbackRunRolledBack, true
	case v1alpha1.WorkflowRunRollbackFailed:
		return v1alpha1.CallbackRunRollbackFailed, true
	}
	return "", false
}

// eachStep calls f on every step and sub-step of st, a sub-step named
// "group/sub".
func eachStep(st *v1alpha1.WorkflowRunStatus, f func(name string, s *v1alpha1.StepStatus)) {
	for i := range st.Steps {
		top := &st.Steps[i]
		f(top.Name, &top.StepStatus)
		for j := range top.SubStepsStatus {
			f(top.Name+"/"+top.SubStepsStatus[j].Name, &top.SubStepsStatus[j])
		}
	}
}

// stepKey identifies a step attempt: its id, which the engine gives each
// attempt, or its name while it has none (pending, skipped).
func stepKey(name string, s *v1alpha1.StepStatus) string { return name + "\x00" + s.ID }

type builder struct {
	uid   types.UID
	after *v1alpha1.WorkflowRunStatus
	now   metav1.Time
	out   []v1alpha1.CallbackTransition
}

func (b *builder) run(ev v1alpha1.CallbackEvent, unique string) {
	t := v1alpha1.CallbackTransition{
		Key: Key(b.uid, ev, unique), Event: ev, Time: b.now, Phase: b.after.Phase,
		RollbackError: truncate(b.after.RollbackError),
	}
	switch ev {
	case v1alpha1.CallbackRunFailed, v1alpha1.CallbackRunTerminated, v1alpha1.CallbackRunRollingBack,
		v1alpha1.CallbackRunRolledBack, v1alpha1.CallbackRunRollbackFailed:
		t.RunError = truncate(b.after.Message)
	}
	b.out = append(b.out, t)
}

func (b *builder) step(name string, prev, s *v1alpha1.StepStatus) {
	var prevPhase v1alpha1.WorkflowStepPhase
	if prev != nil {
		prevPhase = prev.Phase
	}
	unique := s.ID
	if unique == "" {
		unique = fmt.Sprintf("%s@r%d", name, b.after.RestartCount)
	}
	add := func(ev v1alpha1.CallbackEvent, unique string) {
		b.out = append(b.out, v1alpha1.CallbackTransition{
			Key: Key(b.uid, ev, unique), Event: ev, Time: b.now, Phase: b.after.Phase,
			Step: &v1alpha1.CallbackStep{ID: s.ID, Name: name, Type: s.Type, Phase: s.Phase,
				Reason: s.Reason, Message: truncate(s.Message), Attempt: s.Attempt},
		})
	}
	started := func(p v1alpha1.WorkflowStepPhase) bool {
		switch p {
		case v1alpha1.WorkflowStepPhaseRunning, v1alpha1.WorkflowStepPhaseSuspending,
			v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseFailed:
			return true
		}
		return false
	}
	if started(s.Phase) && !started(prevPhase) && s.ID != "" {
		add(v1alpha1.CallbackStepStarted, unique)
	}
	switch s.Phase {
	case v1alpha1.WorkflowStepPhaseSucceeded:
		if prevPhase != s.Phase {
			add(v1alpha1.CallbackStepSucceeded, unique)
		}
	case v1alpha1.WorkflowStepPhaseFailed:
		if prevPhase != s.Phase {
			add(v1alpha1.CallbackStepFailed, unique)
		}
	case v1alpha1.WorkflowStepPhaseSkipped:
		if prevPhase != s.Phase {
			add(v1alpha1.CallbackStepSkipped, unique)
		}
	case v1alpha1.WorkflowStepPhaseSuspending:
		// Each #Suspend of an attempt is a suspension of its own.
		if prevPhase != s.Phase || prev.SuspendedBy != s.SuspendedBy {
			add(v1alpha1.CallbackStepSuspended, unique+"/"+s.SuspendedBy)
		}
	}
}

// Key is the Idempotency-Key of a transition.
func Key(uid types.UID, ev v1alpha1.CallbackEvent, unique string) string {
	return string(uid) + "/" + string(ev) + "/" + unique
}

func truncate(s string) string {
	if len(s) <= MaxText {
		return s
	}
	cut := MaxText - len("…")
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(c byte) bool { return c&0xC0 != 0x80 }

// Events are all the events, in the order docs/controller.md lists them.
var Events = []v1alpha1.CallbackEvent{
	v1alpha1.CallbackRunStarted, v1alpha1.CallbackRunSucceeded, v1alpha1.CallbackRunFailed, v1alpha1.CallbackRunTerminated,
	v1alpha1.CallbackRunRollingBack, v1alpha1.CallbackRunRolledBack, v1alpha1.CallbackRunRollbackFailed,
	v1alpha1.CallbackRunSuspended, v1alpha1.CallbackRunResumed,
	v1alpha1.CallbackStepStarted, v1alpha1.CallbackStepSucceeded, v1alpha1.CallbackStepFailed, v1alpha1.CallbackStepSkipped,
	v1alpha1.CallbackStepSuspended,
}

// Wants reports whether a callback that asks for events hears ev: all
// events when it names none.
func Wants(events []v1alpha1.CallbackEvent, ev v1alpha1.CallbackEvent) bool {
	if len(events) == 0 {
		return true
	}
	for _, e := range events {
		if e == ev {
			return true
		}
	}
	return false
}

// Record appends the transitions that events asks for to st's outbox, at
// most max (DefaultMaxPending when max <= 0) kept: past that, the oldest
// are dropped and counted in Dropped. It reports whether it added any.
func Record(st *v1alpha1.WorkflowRunStatus, ts []v1alpha1.CallbackTransition, events []v1alpha1.CallbackEvent, max int) bool {
	if max <= 0 {
		max = DefaultMaxPending
	}
	added := false
	for _, t := range ts {
		if !Wants(events, t.Event) {
			continue
		}
		if st.Callback == nil {
			st.Callback = &v1alpha1.CallbackStatus{}
		}
		st.Callback.Outbox = append(st.Callback.Outbox, t)
		added = true
	}
	if !added {
		return false
	}
	if over := len(st.Callback.Outbox) - max; over > 0 {
		st.Callback.Outbox = append(st.Callback.Outbox[:0:0], st.Callback.Outbox[over:]...)
		st.Callback.Dropped += int32(over)
	}
	st.Callback.Pending = int32(len(st.Callback.Outbox))
	return true
}

// NoteSuspend records st's status.suspend as heard by its callback, so a
// suspend or resume written from outside (not by a tick) is a transition
// once the controller's next write sees it differ.
func NoteSuspend(st *v1alpha1.WorkflowRunStatus) {
	if st.Callback == nil {
		if !st.Suspend {
			return
		}
		st.Callback = &v1alpha1.CallbackStatus{}
	}
	st.Callback.Suspended = st.Suspend
}

// Phase is the run's phase as the callback body spells it: capitalised,
// as the reference's "Failed".
func Phase(p v1alpha1.WorkflowRunPhase) string {
	if p == "" {
		return ""
	}
	return strings.ToUpper(string(p[:1])) + string(p[1:])
}
