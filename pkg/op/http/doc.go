// Package http is the "http" op family: one op, do, that sends an HTTP
// request and returns the response. Its CUE schema is stdlib/vela/http
// (#HTTPDo, $params → $returns) and, in the legacy flat dialect, #HTTPDo in
// stdlib/vela/op; both decode into the one Params struct.
//
// The model:
//
//   - A call is one request and one response. Any response is a result, a 404
//     or a 500 included: $returns carries statusCode, body, header and
//     trailer, and the template decides what a status means. Only a request
//     that got no response fails the call.
//   - Class follows the method. GET and HEAD are op.Idempotent and are sent
//     again on every evaluation of the step. POST, PUT, PATCH and DELETE are
//     op.Effect: the executor sends them once per step attempt and replays
//     the recorded result afterwards. A call whose Call.Class is op.Effect
//     (a template may override the class) carries an Idempotency-Key header
//     derived from (run UID, step attempt, op path), so a server can
//     recognise the same call if it ever arrives twice; a template that sets
//     the header itself keeps its own value.
//   - Requests are fenced (pkg/netfence, Options.Fence): the URL of each
//     request and redirect is checked, and so is every address the
//     transport dials, in the dialer's Control hook, after the name
//     resolved and before a packet is sent. A denied destination fails the
//     call permanently with a message naming the method, the URL (and the
//     redirect) and the rule. Proxies from the environment are used only
//     with Options.ProxyFromEnvironment; the host of a request a proxy
//     carries is then checked on what it resolves to in the controller.
//   - Errors say how they are handled. Bad parameters (method, URL, timeout,
//     rate limit, header names), unusable Secret content, a destination the
//     fence denies and a response body over the bound
//     (Options.MaxBodyBytes) are op.Permanent. No response (refused, reset,
//     timed out) and a rate-limited call are plain errors: a retry may
//     pass. A cancelled context fails the call with an error that wraps
//     context.Canceled.
//   - request.ratelimiter allows at most limit requests per period for one
//     method and URL. The count lives in the Family, so it is shared by every
//     run the Family serves and by nothing else. A call over the limit is not
//     delayed; it fails at once with ErrRateLimited.
//   - Secrets are read through the SecretReader given to New:
//     request.headersFromSecret from the step's namespace, tls_config from
//     its own namespace or the step's. The Family keeps one HTTP client per
//     distinct TLS material, a bounded number of them; it never puts secret
//     values into errors.
package http
