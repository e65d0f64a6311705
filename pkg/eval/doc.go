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
// always filled into $returns; the flat schemas map $returns onto their own
// fields (value, response, ...).
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
// Compiled templates and the stdlib are cached per template content, so a
// repeated evaluation costs the fill, the decoding and the ops. CUE values
// are not safe for concurrent use, so CUE work holds the evaluator's lock;
// ops run without it. Each stretch of CUE work is bounded in time: a
// template that does not finish fails the step, and the evaluator starts
// over with a fresh CUE context.
package eval
