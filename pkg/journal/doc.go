// Package journal records what the op calls of a step attempt returned, so
// that evaluating the step again replays those calls instead of repeating
// them.
//
// # Model
//
// The engine evaluates a step's template many times: on every tick while the
// step waits, after the controller restarts, after a suspend is resumed. Each
// evaluation finds the template's op calls again and runs them through an
// op.Runner. Sending a GET again is harmless; sending a POST again is not.
// The journal is the run's memory of which calls have already happened.
//
// A step attempt is one try at running a step, named by op.Step.StepID
// (context.stepSessionID). A retry, a restart of the run and a retry from a
// step each start a new attempt with a new StepID, and so with an empty
// journal. One op call of one attempt is named by Key(StepID, Path), where
// Path is the call's CUE path in the template; the Entry under that key is
// what the call returned, and which op returned it (Entry.Op). A Journal holds the entries of one run together
// with the run's context variables set at run time (#DoVar, the "set context
// variable" operation), and keeps both in a Store. In a cluster the Store is
// one ConfigMap per run, which holds at most 1 MiB; hence Limits.
//
// # The rule
//
// Journal.Runner wraps the base runner with the one rule for re-entry. The
// rule goes by the call's class (op.Call.Class) and by whether the journal
// holds an entry under Key(StepID, Path), nothing else:
//
//	class       ops                               each time the call is reached
//	----------  --------------------------------  ---------------------------------------
//	Idempotent  reads, applies, GET/HEAD,         run it; record nothing
//	            transforms, #DoVar, #Log,
//	            #Message
//	Effect      POST/PUT/PATCH/DELETE,            entry: replay its Returns and Message;
//	            kube delete, notifications          do not call the op
//	                                              none: run it; on success record the
//	                                                result, on error record nothing
//	Control     #Suspend                          run it; entry: the suspend was resumed,
//	                                                pass (Stop and Message cleared);
//	                                                none: record it, stop the step
//	            #ConditionalWait, #Fail, #Break   run it; record nothing
//
// One key moves through these states; nothing moves it back, except that
// Retain drops it once its attempt is abandoned (see Dropping):
//
//	Effect:   none ──op succeeds──▶ recorded ──▶ replayed at every later evaluation
//	           ↺ op fails (the next evaluation calls it again)
//
//	Suspend:  none ──stops──▶ recorded ── engine resumes the step ──▶ passes at every
//	                                      (by hand or Duration)        later evaluation
//
// The rule relies on the engine not evaluating a suspended step until it
// resumes it: a recorded suspend that is reached again has been resumed. Two suspends at
// different paths of one attempt are two keys: the first passes after its
// resume, the second still stops the first time it is reached.
//
// What follows from the rule:
//
//   - A replay stays with its op: if the step's definition was edited
//     during the attempt and another kind of call now sits at the call's
//     path (another op, or for an op.Describer such as HTTP another kind of
//     call of it: a DELETE where a POST was recorded), the call fails for
//     good, naming the step, the path and both, instead of passing one
//     effect's recorded result off as another's. Retrying the step starts a
//     new attempt with the new definition.
//   - An Effect call runs once per step attempt, with the parameters of its
//     first successful run. If its parameters change in a later evaluation
//     (they depend on a read that changed), the recorded result is still
//     replayed and the op is not called with the new parameters. To send
//     again, start a new attempt (retry, restart, retry from step).
//   - A replayed result is the recorded one decoded from JSON: maps, slices,
//     strings, float64, bool and nil. Effect ops return Returns that survive
//     that; one that does not marshal fails the call for good. An Effect
//     result's Stop is not recorded: effect ops do not stop a step.
//   - If the record cannot be made (a bound in Limits, a failed Save), the
//     call fails with that error, after the effect happened; see below.
//   - A template can override an op's class with #class: "idempotent" (a
//     POST that only queries, so it runs on every evaluation) or
//     #class: "effect" (a GET that triggers something, so it runs once). The
//     evaluator (pkg/eval) reads the field; a control op's class cannot be
//     overridden.
//   - Context variables are not journalled per call: a #DoVar Put runs on
//     every evaluation and writes its value again. PutVar only marks the
//     journal dirty; the engine is to call Flush once per tick.
//
// # Crash windows
//
// Record saves through to the Store at once, so a record survives a crash
// right after it. Two windows remain, because the effect, the journal and
// the run's status are three writes that cannot be made atomic:
//
//   - Between an effect and its record. If the process dies after the op's
//     effect and before the Save, or the Save fails, the record is lost and
//     the next evaluation calls the op again. For Effect calls the HTTP op
//     sends an Idempotency-Key header derived from (RunUID, StepID, Path),
//     the same on every try, so a receiver that honours it can drop the
//     repeat; kube delete treats an object already gone as deleted. A
//     suspend whose record was not saved stops its step again.
//   - Between a suspend's record and the step's status. With Runner, if the
//     process dies after the suspend is recorded and before the executor
//     saves the step as suspended, the next evaluation finds the record and
//     passes the suspend as if it had been resumed. The engine therefore
//     uses RunnerResuming: the step status itself says which suspend
//     suspended the attempt and which were resumed (steps[].suspendedBy,
//     steps[].resumed), one object written once, and suspends are not
//     recorded here at all.
//
// If the Save of a record keeps failing, each evaluation of the attempt may
// send the effect again; the engine counts those evaluations in the step's
// status and fails the step (JournalError) after a bound.
//
// # Dropping
//
// Nothing that starts a new attempt (the engine's retry, RetryFrom,
// Restart) touches the journal: they only change the run's status. Were
// they to drop the old attempt's entries and the status write then be lost
// (a conflict with a resume written meanwhile, a crash), the old attempt
// would run again without its records and send its effects twice. Instead
// the engine, at the start of each tick, whose input is by definition the
// saved status, calls Retain with the attempts still live in it (unfinished
// steps, and steps yet to start under the id they will start with) and
// Restarted with the run's restart count, which drops the variables set
// before the last restart (Data.Restarts says which restart they belong
// to). So entries of finished, retried and restarted attempts go, but only
// after the status that abandons them is saved. Drops are saved with the
// next Save made for another reason, never by a write of their own.
//
// Context snapshots (Data.SnapshotKeys and SnapshotValues: the variables
// each step attempt last saw, each distinct state stored once, recorded by
// the engine only when the run has variables) are kept apart from the
// entries: Retain does not drop them, since the snapshot of a finished
// attempt is what a retry from its step restores; the engine drops them
// with RetainSnapshots once its saved status no longer names their
// attempt. They are best effort: one over the bound, or in the way of an
// entry or a variable, is not kept, and a retry from its step is refused
// (ErrSnapshotNotKept) rather than a step failed. See snapshot.go.
//
// # Size
//
// Record refuses an entry over Limits.MaxEntryBytes, or one that would take
// the entries and variables over Limits.MaxTotalBytes, with an op.Permanent
// error: the step fails rather than the Store. #Log lines (StepLog) are kept
// apart, within their own bounds per line, per step and per run; cut lines
// and dropped lines are marked. Each line keeps the time it was written
// (Data.LogTimes, from the clock of WithClock: the engine's), counted in the
// bounds and dropped with it; a journal written before times were kept
// reads with its old lines untimed. No log line can keep an effect from being
// recorded, and a Flush that fails with only log lines to save says so
// (ErrLogsNotSaved): the engine goes on without them.
//
// # Concurrency
//
// A Journal is safe for concurrent use: the steps of a DAG run concurrently.
// Saves are made one at a time, in the order of the changes they carry.
//
// Two processes write a run's journal: the controller (records, #DoVar,
// logs) and the CLI (context set). A Store's Save fails with ErrConflict if
// another writer saved since its last Load or Save (kubestore: a
// resourceVersion precondition); the Journal then loads the other writer's
// data and puts its own changes since its last Save over it: entries are
// added once (an entry already there stays), drops and variables are its
// own, and so are the log lines of the steps it logged. No writer loses
// another's record or variable, and a run without conflicts makes no more
// writes than before.
package journal
