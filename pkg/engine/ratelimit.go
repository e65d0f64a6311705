package engine

import (
	"fmt"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/graph"
)

// ReasonRateLimited: a pending step whose type's start rate limit holds it
// (Input.Limiter); it starts, and the tick's WakeAt is, when its turn is due.
const ReasonRateLimited = "RateLimited"

// Limiter paces the starts of steps by type across runs: the controller's
// rate limits (ratelimit.Starts). A step starts when it goes from pending
// to running, once per attempt id: a retry of a running step is paced by
// its backoff and is not asked about; a restart or a retry from a step
// starts new attempts, which are.
type Limiter interface {
	// Reserve asks to start the step attempt stepID, of stepType, at now
	// (the tick's time). A zero wait means start now. A positive wait
	// means not before now+wait: the start is kept for stepID, so asking
	// again then answers zero; limit describes the type's limit for the
	// step's message.
	Reserve(stepType, stepID string, now time.Time) (wait time.Duration, limit string)
}

// rateLimited asks the limiter whether the pending step s may start now.
// One that may not stays pending with reason RateLimited and the tick
// wakes when its turn is due; changed says its status changed.
func (t *tick) rateLimited(s *graph.Step, ss *v1alpha1.StepStatus) (wait, changed bool) {
	if t.in.Limiter == nil {
		return false, false
	}
	d, limit := t.in.Limiter.Reserve(s.Spec.Type, t.stepID(s.Name, max(ss.Attempt, 1)), t.now)
	if d <= 0 {
		return false, false
	}
	t.wakeAt(t.now.Add(d))
	msg := rateLimitedMessage(s.Spec.Type, limit)
	if ss.Reason == ReasonRateLimited && ss.Message == msg {
		return true, false
	}
	ss.Reason, ss.Message = ReasonRateLimited, msg
	return true, true
}

// compensationRateLimited is rateLimited for the compensation cs, of type
// typ, of step status ss, that has not started: it counts as a start of a
// step of its type, under its own attempt id.
func (t *tick) compensationRateLimited(typ string, ss *v1alpha1.StepStatus, cs *v1alpha1.CompensationStatus) (wait, changed bool) {
	if t.in.Limiter == nil {
		return false, false
	}
	d, limit := t.in.Limiter.Reserve(typ, CompensationID(ss.ID, max(cs.Attempt, 1)), t.now)
	if d <= 0 {
		return false, false
	}
	t.wakeAt(t.now.Add(d))
	msg := rateLimitedMessage(typ, limit)
	if cs.Reason == ReasonRateLimited && cs.Message == msg {
		return true, false
	}
	cs.Reason, cs.Message = ReasonRateLimited, msg
	return true, true
}

// rateLimitedMessage has no time in it: a message that changed at every
// tick would cost a status write at every tick.
func rateLimitedMessage(typ, limit string) string {
	return fmt.Sprintf("waiting for its turn to start: steps of type %q are rate-limited to %s", typ, limit)
}
