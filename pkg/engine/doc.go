// Package engine advances a WorkflowRun: one Tick takes the run's spec and
// status, the step definitions, the ops, the journal and the clock, and
// returns the next status and when the run next needs a tick. It runs every
// step that is ready, one after another in StepByStep mode and concurrently
// in DAG mode, and stops where the run must wait. It is pure: no
// controller-runtime, no global state; storage, clock and ops are injected,
// so the controller, the CLI and the REST API drive the same code, and
// calling Tick again with nothing changed changes nothing.
//
// # Steps
//
//	          deps done, if true         template ran to the end
//	pending ──────────────────▶ running ─────────────────────────▶ succeeded
//	   │                         │  ▲ │ ╲  #ConditionalWait unmet: stays
//	   │ if false, or an         │  │ │  ╲ running (reason Wait), polled
//	   │ upstream step failed    │  │ │   ╲
//	   ▼                         │  │ │    ╲ op error: new attempt after a
//	skipped          #Suspend /  │  │ │     backoff; after the retry limit
//	                 suspend     ▼  │ │      ──────────────▶ failed
//	                    suspending  │ │ #Fail, template error, timeout,
//	                       │ resume │ │ terminate ─────────▶ failed
//	                       └────────┘ │
//
// The operator may also hold a step that has not started (SuspendStep):
// it is suspending with reason Held and no attempt id, is not started even
// once its dependencies are done, and a resume makes it pending again, so
// it then starts after them as any pending step (and its timeout counts
// from that start). The step operations of the REST API (TerminateStep,
// SuspendStep, ResumeStep) record the operator's message on the step
// (extMessage); operations.go has their table.
//
// A step ready to start whose type is rate-limited (Input.Limiter, the
// controller's rateLimits) and whose turn has not come stays pending with
// reason RateLimited; the tick's WakeAt is its turn, and at that tick it
// starts (ratelimit.go). Its timeout counts from that start.
//
// A step group's phase follows its sub-steps: suspending if one is, failed
// (reason SubStepFailed, naming the sub-step and its reason) once all are
// finished and one failed, succeeded once all are finished. A skipped group
// skips its sub-steps; a group's timeout covers them. Every failed step has
// a reason and a message that says what happened.
//
// # Holds and timeouts
//
// A hold (a step suspended by #Suspend, as the shipped suspend step type
// does, or by the operator, or a group suspended through its sub-steps) does not pause
// timeouts. A timeout is a deadline counted from the step's first
// execution, so it bounds how long a step may wait for a person as well as
// for a service. A held step whose deadline passes fails with reason
// Timeout and a message that says it was suspended; a held group whose
// sub-step times out then fails with SubStepFailed. A hold without a
// deadline lasts until a resume, terminate, restart or retry-from. While
// the whole run is suspended nothing is evaluated: a step whose deadline
// passed meanwhile times out at the first tick after the resume.
//
// # The run
//
//	initializing ──▶ executing ◀──▶ suspending
//	                     │
//	                     ├──▶ succeeded   every step finished, none failed
//	                     ├──▶ failed      every step finished, one failed
//	                     └──▶ terminated  by Terminate, or by a step's
//	                                      #Terminate (that step fails with
//	                                      reason Terminate, the others as by
//	                                      Terminate; the run's message is the
//	                                      template's)
//
// A run whose onFailure (or, once terminated, onTerminate) is Compensate
// does not end failed (terminated): it goes on rollingBack while the
// compensations of its succeeded steps run in reverse dependency order,
// and ends rolledBack or rollbackFailed (status.rollbackError);
// compensate.go states that model.
//
// status.suspend is true while the run is suspending, as KubeVela's:
// suspended from outside (Suspend, or a tool setting status.suspend), when
// nothing is evaluated until a resume, or held by a suspending step, when
// its other steps go on; status.suspendState says which (Operator, Steps).
// Resuming the step that held a run suspended from outside leaves the run
// suspended; a resume of the run clears both.
//
// Before any step has begun, a tick checks the properties of every step
// against its definition's parameter (Evaluator.ValidateParameters, one
// call for the whole run): a run whose properties do not fit fails there,
// its message listing every problem, and no step has had an effect. A
// field an input's parameterKey fills is not required yet.
//
// # Attempts
//
// Each attempt of a step has an id (status.steps[].id, the template's
// context.stepSessionID) derived from the run's UID, its restart count, the
// step's name and the attempt number, so re-evaluating an attempt after a
// crash yields the same id and finds the same journal (see pkg/journal). It
// is ten lowercase letters and digits starting with a letter (StepID), as
// KubeVela's, so a DNS label whatever the step's name: templates name
// objects after it. The status keeps the id an attempt started with. A
// retry after an op error, a retry from a step and a restart each start a
// new attempt, hence a new id.
//
// What an attempt runs with is recorded so a retry from its step can give
// it again: its input values (steps[].inputs, resolved once and kept for
// the step's later attempts) and the run context variables it saw, which
// the journal keeps per attempt id (journal.SnapshotVars; only when the run
// has variables, so a run without them writes nothing more; never failing
// the step: one the journal's bound cannot hold is marked unknown, and a
// retry from its step is refused with journal.ErrSnapshotNotKept). RetryFrom, on
// a finished run only, makes the run's variables that snapshot again
// (through the journal, saved before the status) and starts new attempts
// of the step and of every step downstream of it: new ids, so their
// effects are sent again, with new Idempotency-Keys. Retry (a finished
// run) is Restart. Times in the status are whole seconds, as
// the API server keeps them, and timers round up so a wake-up is never
// early.
//
// An op error a retry may fix starts a new attempt after a backoff, up to
// the step's retry.limit (DefaultRetryLimit without one; limit 0 means
// none); then the step fails with FailedAfterRetries.
//
// # Bounds
//
// The status is written whole, in one API object, so what a template can
// put there is bounded: an output over MaxOutputBytes, or outputs and
// recorded inputs over the run's MaxRunValueBytes, fail their step
// (OutputError, InputError) with a message naming the value and its size;
// a message over MaxMessageBytes (less in runs with many steps) is
// truncated and marked "… (truncated, N bytes)".
package engine
