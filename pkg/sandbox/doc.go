// Package sandbox evaluates steps in worker processes that can be stopped,
// so that a runaway template costs its own step and nothing else.
//
// A goroutine cannot be killed: an evaluation that runs over its time
// bound in the controller's own process goes on burning CPU and memory.
// So the CUE work happens in workers, and only there.
//
// # Processes
//
// The controller (the parent) keeps a Pool of workers: the same binary
// started with a hidden subcommand (`stepflow eval-worker`) that calls
// Serve. A worker runs an ordinary in-process eval.Evaluator under an
// address-space limit (RLIMIT_AS, with the Go memory limit below it). Its
// op calls are sent to the parent (op name, CUE path, class, parameters),
// where the session's real Runner runs them, journal and Kubernetes
// clients included, and their op.Result or error is sent back. So every
// effect, every journal record and every client stays in the parent; the
// worker only computes. The calls of op.Pure ops (wait, fail, string
// conversions) are computation like CUE, with nothing for a runner to
// add: the worker runs those itself, saving a round trip each. A session
// is one Evaluate, Condition or Check; a worker serves several sessions at
// once, multiplexed by session id, and a session stays on the worker it
// started
// on, where its CUE values live.
//
// # How many
//
// One worker runs while it keeps up: a worker is a process with a Go
// runtime and the controller's code, so a second one costs memory and
// CPU, and one is enough for a controller's evaluations of a few
// milliseconds each. Another starts, up to Options.Workers, only when
// every running worker is held by one evaluation for longer than
// Options.BusyAfter (a slow template, or a runaway before its bound
// stops it): new sessions go to it, and so do sessions that have not
// started yet and would wait behind the long one. A session that has not
// started when its worker dies moves to another too: it has cost nothing
// and is not interrupted. Workers beyond the first stop after
// Options.IdleAfter with nothing to do.
//
// # Time
//
// A worker evaluates one session's CUE at a time: a session holds its
// worker's CUE token from the moment its request or the last result of its
// op calls is sent until the worker sends an op call or the end of the
// session. Only that time counts against the session's bound (Options.
// EvalTimeout, summed over the session): waiting for a worker or for the
// token, and the parent's time running op calls, do not. A session that
// goes over its bound has its worker killed (SIGKILL).
//
// # Who pays
//
//   - The session holding the token when its worker was killed for its
//     overrun fails: eval.Failed with reason EvalTimeout.
//   - The session holding the token when its worker died of its memory
//     limit fails: eval.Failed with reason EvalMemory.
//   - Every other session of a dead worker is eval.Interrupted: the engine
//     evaluates the same attempt again soon, with no retry counted. An
//     attempt interrupted Options.MaxInterruptions times in a row is taken
//     for the culprit and fails with reason EvalInterrupted.
//   - No worker to be had (it cannot be started) is eval.Interrupted too,
//     with no strike: the engine tries again soon, for as long as it lasts.
//
// A dead worker is replaced at once. Condition and Check have no outcome
// phases: they are repeated on another worker when interrupted.
//
// # Protocol
//
// Messages are CBOR values (RFC 8949: cheaper to encode and decode than
// JSON, and integers stay integers), over the worker's stdin (parent to
// worker) and stdout (worker to parent); its stderr goes to the parent's
// log. The parent sends hello (the limits) first, then
// eval, cond, check, schema, params (open a session), result (an op call's result) and
// cancel; the worker sends call (an op call of a session) and done (the
// session's outcome). The worker exits when its stdin closes.
package sandbox
