// Package clusters is the registry of the named clusters kube ops reach
// with `cluster: NAME`: it implements kube.Clusters over the cluster
// Secrets of the system namespace, in KubeVela's format, so community
// definitions that pass `cluster:` work unchanged.
//
// The model. A named cluster is one Secret, named after the cluster, in the
// system namespace (vela-system by default):
//
//	metadata.labels[cluster.core.oam.dev/cluster-credential-type]
//	                      X509Certificate | ServiceAccountToken
//	data.endpoint         the API server's URL (https://host:port)
//	data.ca.crt           the CA that signed its serving certificate (PEM;
//	                      optional: the system's roots are used without it)
//	data.token            ServiceAccountToken: the bearer token
//	data.tls.crt, tls.key X509Certificate: the client certificate and key
//
// `stepflow cluster join` writes such Secrets from a kubeconfig. The names
// "" and "local" are the controller's own cluster and never look a Secret
// up: they go to the Local registry the Registry wraps.
//
// Resolving NAME for a step:
//
//  1. GET the Secret NAME in the system namespace, directly (never
//     through a cache: no Secret of any cluster is held in the controller
//     beyond the credentials of the clusters in use), through the reader
//     Options.Secrets returns for the step. In a multi-tenant controller
//     that is the step's own identity (pkg/tenancy), so a run may use a
//     cluster only if its ServiceAccount may get that Secret: grant `get`
//     on `secrets` with resourceNames [NAME] in the system namespace to
//     the runners that may deploy there.
//  2. No such Secret: an op.Permanent "unknown cluster" error. A Secret
//     that is not a cluster Secret, or lacks what its type needs: an
//     op.Permanent error naming the Secret and the missing key (never a
//     value). A denial stays the tenancy's permanent denial, whether or
//     not the Secret exists, so a step learns nothing of clusters it may
//     not use.
//  3. The connection for the Secret's resourceVersion is reused; a
//     changed resourceVersion (rotated token, moved endpoint) builds a
//     new one. A connection is an HTTP client with the Secret's
//     credentials and a RESTMapper that discovers the remote cluster's
//     kinds lazily, shared by every identity on that cluster.
//  4. The client for the step acts, on the remote cluster, as the same
//     user its ServiceAccount is at home, system:serviceaccount:<ns>:<name>,
//     by impersonation (as KubeVela's cluster-gateway does): the
//     credentials in the Secret must be allowed to impersonate there, and
//     the remote cluster's RBAC for that user name decides what the step
//     may do (the ServiceAccount need not exist there). A single-tenant
//     controller (Options.SingleTenant) acts with the Secret's own
//     credentials instead. A request the remote cluster forbids the
//     step's user is a permanent denial, as at home; one forbidden
//     because the Secret's credentials may not impersonate stays
//     retryable (the install is broken, not the step).
//
// Reads and watches (Options.Cache, once Start runs). Each connection has
// its own informer-backed reader (pkg/opcache, with the connection's
// config, credentials and RESTMapper): one informer per kind and namespace
// a step reads or waits on, stopped when idle, and stopped with the
// connection when its Secret changes or goes. Its events reach
// Cache.OnEvent with the cluster's name (the controller's waker wakes the
// runs that looked at the object on that cluster), and Watch starts one
// for an object a step applied. The informers list and watch with the
// Secret's credentials, so a step's read is served from them only after
// an access review of the step's user on that cluster (pkg/tenancy, the
// reviews sent there with the Secret's credentials): a read the review
// denies, or that the credentials may not review, is sent as the step's
// user and the remote API server decides, as without a cache. A
// single-tenant controller reads through the cache with the Secret's
// credentials. Writes are never cached.
//
// Errors. A request the remote cluster does not answer (refused, timed
// out, TLS failure) fails with an error naming the cluster
// (`cluster "edge" unreachable at https://...`), which stays retryable.
// The credentials are never part of an error or a log line: errors name
// the Secret, its keys and the endpoint only, and the rest.Config built
// from a Secret is never formatted.
package clusters
