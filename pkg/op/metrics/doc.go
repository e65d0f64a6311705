// Package metrics is the "metrics" op family: one op, promCheck, that asks
// a Prometheus-compatible HTTP API (/api/v1/query) for one value, compares
// it with a condition, and says whether the condition has held long
// enough. Its CUE schema is stdlib/vela/metrics (#PromCheck, $params →
// $returns) and, in the legacy flat dialect, #PromCheck in stdlib/vela/op
// (results in result, failed, message); both decode into the one Params
// struct, with KubeVela's field names.
//
// The model, as KubeVela's check-metrics step uses it:
//
//   - A call runs the instant query and takes its one value: a scalar, or
//     a vector of exactly one sample. A vector of none (the series does not
//     exist yet) is a plain error, retried; a vector of more than one is
//     permanent: the query must say which series it means.
//   - condition is a comparison with a number, the value on its left:
//     ">=0.95", "< 10", "==1", "!=0". NaN meets none of them.
//   - The op remembers, per step attempt and op path, since when the
//     condition has held, or since when it has not, in the run's variable
//     store (op.Env.Vars, which the journal keeps with the run, as KubeVela
//     keeps it in the workflow context). The first evaluation that sees the
//     condition change records the time; later ones measure from it. So
//     $returns.result becomes true once the condition has held for
//     duration without a break, and $returns.failed once it has failed
//     for failDuration without a break; a template waits on result and
//     fails on failed. A new step attempt starts counting afresh.
//     (KubeVela's provider never records the start of a failure, so its
//     failed stays false; this one fails as its documentation says.)
//   - The op is op.Idempotent: it queries again on every evaluation, which
//     is what a check that waits needs.
//   - Requests go through the HTTP ops' fence (pkg/netfence): the
//     endpoint's URL is checked first, and every address dialled, so a
//     metric check cannot reach what an HTTP step may not.
//   - Errors say how they are handled: bad parameters, a fenced endpoint,
//     a query Prometheus rejects (bad_data) and an ambiguous result are
//     op.Permanent; no response, a server error and no sample yet are
//     plain errors, retried.
package metrics
