// Package kube is the "kube" op family: reading and writing Kubernetes
// objects from step templates (vela/kube and the flat vela/op twins).
//
// Every op names a cluster ("" is the one the controller runs in) and gets
// its client from a Clusters registry, which the caller builds, for the
// step's identity (op.Step.ServiceAccount): the client acts as that
// ServiceAccount, so a step can touch what its identity may and nothing
// more (see pkg/tenancy). LocalAs serves just the local cluster as each
// step's identity; Local serves it with one client for every step, the
// controller's own identity in a single-tenant install. SecretReader reads
// the Secrets other families need (HTTP headers, TLS material) the same
// way. Objects cross the op boundary as the plain maps
// CUE decodes to and travel as unstructured objects, so any kind the API
// server serves works, custom resources included; a kind the server does not
// serve fails permanently, with "no kind K in group G (version V): is its
// CRD installed?", also when the client's RESTMapper still knows a kind
// whose CRD was removed (the API server's bare 404 for a path it does not
// serve is told apart from the 404 of a missing object). A namespaced
// object without metadata.namespace
// lands in the step's namespace.
//
// Each op is one API request (after the client has discovered the kind,
// which it does once per group version and then caches):
//
//	op                 request                                  class
//	apply              server-side apply PATCH, field owner     Idempotent
//	                   "stepflow", forcing ownership
//	apply-in-parallel  one apply per object, 8 at a time        Idempotent
//	apply-in-order     one apply per object, in list order,     Idempotent
//	                   stopping at the first refusal
//	patch              strategic merge PATCH for built-in       Idempotent
//	                   kinds, JSON merge PATCH for others
//	read               GET                                      Idempotent
//	list               LIST                                     Idempotent
//	delete             DELETE, or DELETE of a collection when   Effect
//	                   the filter has matchingLabels (even if
//	                   value names an object, as KubeVela's
//	                   clean-jobs relies on) or value no name
//
// In the controller, read and list of anything but Secrets are served from
// its ops cache instead (pkg/opcache: one informer per kind and namespace in
// use), so repeating them costs no request.
//
// Idempotent ops run again whenever the step is evaluated again; that is
// what keeps an applied object converging and a read fresh. Delete runs once
// per step attempt and is replayed from the journal afterwards (see
// pkg/journal).
//
// Results and errors: read reports a missing object in $returns.err and does
// not fail; delete treats a missing object as deleted. Parameters that can
// never work (no apiVersion, kind or name, an unknown kind or cluster, an
// object the API server rejects as invalid, a request the step's identity
// may not make, as pkg/tenancy's clients report it) fail with an op.Permanent error; any other failure (API
// server unreachable, conflict) is retryable.
package kube
