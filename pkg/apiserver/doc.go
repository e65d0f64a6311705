// Package apiserver serves SREWorks appmanager's /workflow REST API over
// WorkflowRuns, so a portal written against SREWorks can drive Stepflow
// without changing its client. Kubernetes is the only store.
//
// The model:
//
//   - An instance is a WorkflowRun launched from an ApplicationConfiguration
//     (pkg/app). Its numeric id is the run's app.LabelInstanceID label; it
//     is also addressed as "namespace/name" (URL-escaped in a path). The
//     instance JSON is computed from the run on every read: nothing is
//     stored besides the run.
//
//   - Every response, errors included, is the envelope
//     {code, success, message, requestId, timestamp, data}: code 200 and
//     message "SUCCESS" on success; on failure code is the HTTP status,
//     except bad input, which is HTTP 400 with code 10002 as in SREWorks.
//
//   - A request passes, in order: a request id; the route (404 when
//     there is no such endpoint); authentication (401); the caller's rate
//     limit (429, a token bucket per user name; failed authentications
//     drain one per client address, and an empty one is refused before
//     its token is reviewed); authorization of what the route does (403);
//     the act. /healthz and /readyz skip
//     authentication.
//
//     Authentication and authorization are an Authenticator: with
//     Kubernetes (--auth kubernetes) a bearer token is checked with a
//     TokenReview and each call with a SubjectAccessReview of the
//     WorkflowRun verb it needs (get/list to read, create to launch,
//     update to change) in the run's namespace; both answers are cached
//     for a few seconds. The server then acts with its own client: the
//     review is what stops a caller from using the server's rights.
//
//   - Reads of runs and step definitions go through the client given in
//     Options, in the binary a cache (NewCluster), so a run just launched
//     may show up in GET a moment later. ConfigMaps (a large
//     configuration, the instance id counter) are read from the API
//     server. Writes go to the API server.
//
//   - A launch is app.Run: the same function the CLI's launch calls, so
//     both make the same run. The configuration is first built without
//     touching the cluster and each step type looked up where the
//     controller will look (the run's namespace, then SystemNamespace), so
//     a document that does not parse or build, or names a step type with
//     no definition, is a 400 and nothing is created. The creator is the
//     authenticated user (the run's creator annotation, and a Launched
//     Event on the run); the numeric id comes from app's counter in
//     SystemNamespace, this server's launches taking turns at it.
//
//   - Every write (context, resume, terminate, retry, retryFromTask, the
//     task operations) is a pkg/engine operation applied through
//     pkg/runop, as the CLI applies it, after a SubjectAccessReview of
//     update in the run's namespace. A lockVersion (or If-Match) that is
//     not the run's resourceVersion is a 409 and nothing is written; an
//     operation the run's state does not allow (resume of a run that is
//     not SUSPEND, retry of one not finished) is a 409 naming the state.
//     Who did it is on the run (runop's annotations) and in an Operated
//     Event.
//
//   - A task is a step of the run (types.go: its id is its position). Its
//     state is app.TaskState of the step's status; a step with no status
//     yet is PENDING. Its #Log lines are read from the run's journal;
//     following them (SSE or WebSocket, logs.go) watches the run and its
//     journal ConfigMap, so a line arrives as soon as the controller saves
//     it, and a stream is bounded in time and in number per user.
//
//   - The web UI has its own API under /ui/api (ui.go; docs/ui.md): runs
//     as the UI lists and draws them, errors as {"error": message}, no
//     envelope, the same authentication and reviews. Its live updates
//     are Server-Sent Events fed by the cache's informer of runs
//     (uievents.go): a handler per stream, a bounded queue each, a slow
//     client dropped. Its run actions are the operations above
//     (uiactions.go), and which of them a run allows is asked of the
//     same functions without writing (runop.Checker); a step's details
//     and log stream (uisteps.go) read its status, the run's debug
//     ConfigMap and journal, and its definition. The catalogue
//     (uicatalogue.go) lists definitions as the controller resolves them
//     and launches one-step or Workflow runs (app.Submission, checked
//     first as /workflow/launch is); an app's deploy history (uiapps.go)
//     follows app's rollback rule. Every other GET path is the embedded
//     single-page app (uiassets.go, Options.UI).
//
//   - GET /openapi.json is an OpenAPI 3 document of every route, its
//     schemas generated from the Go types the handlers answer with
//     (openapi.go); a test checks that routes and document agree.
package apiserver
