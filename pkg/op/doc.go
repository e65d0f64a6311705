// Package op is the contract between the evaluator and the op providers.
//
// A step definition's CUE template calls ops: structs that carry the two
// definition fields #provider and #do (for example kube.#Apply has
// #provider: "kube", #do: "apply"). The evaluator (pkg/eval) finds these
// calls, decodes each call's parameters into the Go struct the op asks for
// (Op.NewParams), and hands a Call to a Runner. The op's Result is filled
// back into the template as the call's $returns, and a Result may stop the
// step (Stop: wait, suspend, fail, break).
//
// Each op family lives in its own package under pkg/op (http, kube, builtin,
// transform; component, which renders a component through its
// ComponentDefinition; helm, which renders a chart; appop, the "app" ops
// over a run's application; config, KubeVela's configs stored as Secrets;
// query, an app's resources and the cluster names; kubevela, the
// KubeVela-only ops that fail saying what they need)
// and is constructed with its dependencies;
// nothing registers
// itself. cmd/ builds a Registry from the families it wants and passes it
// down. Op implementations never import CUE: parameters arrive decoded and
// results leave as plain Go values.
//
// Errors: an op returns a plain error for a failure that may pass on a retry
// (network, API server) and wraps it with Permanent for one that cannot
// (bad parameters, unknown cluster). The Runner returned by Registry wraps
// every error into *Error, so callers see one shape.
package op
