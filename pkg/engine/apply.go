package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/graph"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// Retry defaults, as KubeVela: a step without a retry policy whose op
// errors is retried 10 times (11 attempts in all) with exponential backoff.
const (
	DefaultRetryLimit = 10
	defaultInitial    = time.Second
	defaultFactor     = 2.0
	defaultMaxBackoff = 5 * time.Minute
	minPoll           = time.Second
	maxPoll           = 30 * time.Second
	// interruptedDelay is how soon an Interrupted evaluation is repeated.
	interruptedDelay = time.Second
)

// MaxJournalFailures bounds the evaluations of one attempt in a row whose
// journal record could not be saved (steps[].journalFailures); the step then
// fails with reason JournalError.
const MaxJournalFailures = 5

// apply records one evaluation's outcome in the step's status.
func (t *tick) apply(p *pending) {
	s, out := p.step, p.out
	ss := t.ensure(s)
	before := *ss
	if out.Data != nil && t.debug() {
		t.in.Debug.StepValue(s.Name, ss.ID, out.Data)
	}
	switch out.Phase {
	case eval.Succeeded:
		outputs, err := outputsOf(s.Spec.Outputs, out.Outputs)
		if err == nil {
			err = t.boundOutputs(ss, outputs)
		}
		if err != nil {
			t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, ReasonOutput, fmt.Sprintf("step %q: %v", s.Name, err))
			break
		}
		ss.Outputs = outputs
		t.finish(ss, v1alpha1.WorkflowStepPhaseSucceeded, "", out.Message)
	case eval.Waiting:
		ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseRunning, ReasonWait, out.Message
		ss.NextAttemptTime = nil
		t.wakeAt(t.now.Add(pollInterval(t.now, ss.FirstExecuteTime.Time)))
	case eval.Suspending:
		ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseSuspending, ReasonSuspend, out.Message
		ss.SuspendedBy = ""
		for _, c := range out.Calls {
			if c.Stop == "suspend" {
				ss.SuspendedBy = c.Path
			}
		}
		ss.ResumeTime, ss.NextAttemptTime = nil, nil
		if out.SuspendFor > 0 {
			at := metav1.NewTime(ceilSecond(t.now.Add(out.SuspendFor)))
			ss.ResumeTime = &at
			t.wakeAt(at.Time)
		}
	case eval.Failed:
		t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, out.Reason, out.Message)
	case eval.Terminating:
		// The step fails; the run ends once every outcome of this round
		// is recorded (evaluate calls terminateRun).
		t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, ReasonTerminate, out.Message)
		if t.terminateMsg == nil {
			msg := out.Message
			t.terminateMsg = &msg
		}
	case eval.Broken:
		if errors.Is(out.Err, journal.ErrSave) {
			// The effect may have happened but its record is lost: evaluate
			// the same attempt again, so it is sent with the same
			// Idempotency-Key, rather than starting a new attempt. Each
			// time may send it again, so only MaxJournalFailures times.
			ss.JournalFailures++
			if ss.JournalFailures >= MaxJournalFailures {
				t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, ReasonJournal, fmt.Sprintf(
					"step %q: its journal record could not be saved %d times in a row; failed rather than send its effect again: %s",
					s.Name, ss.JournalFailures, out.Message))
				break
			}
			ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseRunning, ReasonJournal, out.Message
			at := metav1.NewTime(ceilSecond(t.now.Add(defaultInitial)))
			ss.NextAttemptTime = &at
			t.wakeAt(at.Time)
			break
		}
		t.retry(s.Spec.Retry, ss, out.Message)
	case eval.Interrupted:
		// Not the step's fault: the same attempt (same id, so the journal
		// replays its effects) is evaluated again soon, counting no retry.
		ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseRunning, eval.ReasonInterrupted, out.Message
		at := metav1.NewTime(ceilSecond(t.now.Add(interruptedDelay)))
		ss.NextAttemptTime = &at
		t.wakeAt(at.Time)
	}
	switch {
	case out.Phase == eval.Failed, out.Phase == eval.Broken, out.Phase == eval.Terminating,
		ss.Phase == v1alpha1.WorkflowStepPhaseFailed:
		// Before the message is bounded: the debug value keeps more of it.
		t.attemptFailed(s, before.ID, ss, out.Data)
	}
	if out.Phase != eval.Broken && out.Phase != eval.Interrupted {
		ss.Retries = 0
	}
	if out.Phase != eval.Interrupted && !(out.Phase == eval.Broken && errors.Is(out.Err, journal.ErrSave)) {
		ss.JournalFailures = 0
	}
	ss.Message = truncate(ss.Message, t.messageLimit())
	if changedStep(&before, ss) {
		ss.LastExecuteTime = t.metaNow()
	}
}

// attemptFailed records, for Result.Failed, that attempt id of step s
// failed: ss is the step's status after the failure (a retried attempt's
// says why, under its next attempt's id), value what its evaluation had.
func (t *tick) attemptFailed(s *graph.Step, id string, ss *v1alpha1.StepStatus, value any) {
	t.failed = append(t.failed, FailedAttempt{
		Step: s.Name, StepID: id, Definition: s.Spec.Type, Reason: ss.Reason, Message: ss.Message,
		Retry: ss.Phase != v1alpha1.WorkflowStepPhaseFailed, Value: value,
	})
}

func changedStep(a, b *v1alpha1.StepStatus) bool {
	return a.Phase != b.Phase || a.Reason != b.Reason || a.Message != b.Message || a.ID != b.ID ||
		!timeEq(a.ResumeTime, b.ResumeTime) || !timeEq(a.NextAttemptTime, b.NextAttemptTime) ||
		len(a.Outputs) != len(b.Outputs)
}

func timeEq(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// retry schedules the next attempt of an erroring step, or fails it once
// the retry limit is reached. The counters live in the status, so they
// survive a restart of whoever runs the tick.
func (t *tick) retry(policy *v1alpha1.RetryPolicy, ss *v1alpha1.StepStatus, msg string) {
	attempts, initial, factor, max := retryPolicy(policy)
	if ss.Retries+1 >= attempts {
		what := fmt.Sprintf("failed after %d attempts", ss.Retries+1)
		if attempts == 1 {
			what = "failed on its first attempt, retry.limit is 0"
		}
		t.finish(ss, v1alpha1.WorkflowStepPhaseFailed, ReasonFailedAfterRetries, what+": "+msg)
		return
	}
	// The old attempt's journal entries stay until a tick reads a saved
	// status without it (retainJournal): if this status is never saved,
	// the old attempt runs again and replays its effects.
	backoff := time.Duration(float64(initial) * math.Pow(factor, float64(ss.Retries)))
	if backoff > max || backoff <= 0 {
		backoff = max
	}
	ss.Attempt++
	ss.Retries++
	ss.Resumed, ss.SuspendedBy = nil, ""
	ss.ID = t.stepID(ss.Name, ss.Attempt)
	ss.Phase, ss.Reason, ss.Message = v1alpha1.WorkflowStepPhaseRunning, ReasonError, msg
	at := metav1.NewTime(ceilSecond(t.now.Add(backoff)))
	ss.NextAttemptTime = &at
	t.wakeAt(at.Time)
}

// retryPolicy returns, first, how many attempts a step gets in all: the
// retries after the first attempt (the policy's limit, DefaultRetryLimit
// when there is no policy or it sets no limit) plus one.
func retryPolicy(p *v1alpha1.RetryPolicy) (attempts int32, initial time.Duration, factor float64, max time.Duration) {
	attempts, initial, factor, max = DefaultRetryLimit+1, defaultInitial, defaultFactor, defaultMaxBackoff
	if p == nil {
		return
	}
	if p.Limit != nil && *p.Limit >= 0 {
		attempts = *p.Limit + 1
	}
	if b := p.Backoff; b != nil {
		if d, err := time.ParseDuration(b.Initial); err == nil && d > 0 {
			initial = d
		}
		if f, err := strconv.ParseFloat(b.Factor, 64); err == nil && f >= 1 {
			factor = f
		}
		if d, err := time.ParseDuration(b.Max); err == nil && d > 0 {
			max = d
		}
	}
	return
}

// pollInterval is how soon a waiting step is evaluated again without an
// event: a quarter of how long it has waited, between 1s and 30s.
func pollInterval(now, since time.Time) time.Duration {
	d := now.Sub(since) / 4
	if d < minPoll {
		return minPoll
	}
	if d > maxPoll {
		return maxPoll
	}
	return d.Truncate(time.Second)
}

// outputsOf turns the values the evaluator read for the step's outputs
// (Request.Outputs, in the same order) into output values.
func outputsOf(items v1alpha1.StepOutputs, values []eval.OutputValue) ([]v1alpha1.StepOutputValue, error) {
	if len(items) == 0 {
		return nil, nil
	}
	if len(values) != len(items) {
		return nil, fmt.Errorf("the evaluator read %d of %d outputs", len(values), len(items))
	}
	var out []v1alpha1.StepOutputValue
	for i, o := range items {
		if err := values[i].Err; err != nil {
			return nil, fmt.Errorf("output %q: %v", o.Name, err)
		}
		raw, err := json.Marshal(values[i].Value)
		if err != nil {
			return nil, fmt.Errorf("output %q: %v", o.Name, err)
		}
		out = append(out, v1alpha1.StepOutputValue{Name: o.Name, Value: &apiextensionsv1.JSON{Raw: raw}})
	}
	return out, nil
}
