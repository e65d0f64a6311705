// Package eval evaluates one step: a WorkflowStepDefinition's CUE template,
// filled with the step's parameters and context, whose op calls are run
// through a caller-supplied op.Runner until the step reaches one outcome.
// It is the one package that imports cuelang.org/go.
//
// # Model
//
// An op call is any struct in the template with concrete #provider and #do
// fields (kube.#Apply, op.#HTTPDo, ...). Structs with only #do (op.#Steps)
// or neither are containers and are searched. The parameters of a call are
// its $params field when it has one (the vela/kube, vela/http, ... dialect),
// otherwise the call struct itself (the flat vela/op dialect). Results are
// always filled into $returns; a flat schema names in #results which of its
// own fields (value, response, ...) receive which results, and the
// evaluator fills those too. Results are filled from outside and stay open
// data: a field an object does not have yet (status.succeeded of a new Job)
// reads as incomplete, so a condition over it waits. Were the schema to copy
// them (value: $returns.value), the reference inside a definition would
// close them and the same read would be an error.
//
// Evaluation proceeds in rounds. Each round lists the calls not yet run, in
// template order (source position), and decodes their parameters:
//
//   - a call whose parameters are not yet concrete is pending: it refers to
//     results of a call that has not run;
//   - a control op (wait, suspend, fail, break) is a barrier: it runs only
//     when every ready call before it has run, and nothing after a pending
//     or stopping control op runs;
//   - the other ready calls before the first barrier run concurrently.
//
// Their results are filled in and the next round starts, until a control op
// stops the step (waiting, suspending, failed, or a break), every call has
// run (succeeded), or calls remain that can never become ready (failed,
// naming them).
//
//	            ┌──────── round: decode, run ready calls, fill results ◀──┐
//	compile ──▶ fill parameter/context ──▶ ────────────────────────────────┘
//	                                     │ stop            │ none left
//	                         waiting/suspending/failed   succeeded
//
// Order comes from data: a call waits for another only when its parameters
// need that call's results to become concrete. In the flat dialect a field
// such as an #Apply's value is both input and output, so a read that only
// repeats the applied object's name is ready at once and may run beside the
// apply; refer to a field only the server sets (metadata.uid, status) to
// make it wait.
//
// Compiled templates and the stdlib are cached per template content (least
// recently used out), so a repeated evaluation costs the fill, the decoding
// and the ops. CUE values are not safe for concurrent use: the evaluator has
// shards, each a CUE context with a lock, and CUE work holds its shard's
// lock; ops run without it. A CUE context keeps everything it compiled, so
// a shard that has compiled twice its cache is replaced by a fresh one.
//
// # Hostile input
//
// Templates, properties, context, if and valueFrom expressions are written
// by users and are untrusted. The rules:
//
//   - Every stretch of CUE work is bounded in time (EvalTimeout), counted
//     from when it holds its shard, never while it waits for one. A stretch
//     over the bound fails the step (EvalTimeout) and its shard is
//     abandoned to the runaway goroutine; work waiting for that shard moves
//     to the fresh one that replaces it, rebuilding its value from the
//     template, the inputs and the op results so far. A goroutine cannot be
//     stopped: the CPU and memory of a runaway come back only with its
//     process (see pkg/sandbox).
//   - A panic in CUE work or an op call, on any goroutine the evaluator
//     starts, fails the step (or returns an error) naming the step, the
//     definition and the expression; its shard is replaced. Expressions are
//     parsed and checked before CUE builds them.
//   - Structs and lists nest at most MaxNesting levels, in templates (Check
//     rejects them), properties, context and op results.
//   - Inputs (Parameters, Context, op Returns) are shared by concurrent
//     steps and are never modified.
package eval
