// Package tenancy makes the Kubernetes requests of a run's ops act as the
// run's identity instead of the controller's.
//
// The model. A run acts as a ServiceAccount of its own namespace: the one
// its spec.serviceAccountName names, else its Workflow's, else the
// per-namespace default DefaultServiceAccount ("stepflow-runner"). A run
// cannot name another namespace's ServiceAccount: the namespace is always
// the run's. The API server knows that identity as the user
// system:serviceaccount:<namespace>:<name> in the groups
// system:serviceaccounts, system:serviceaccounts:<namespace> and
// system:authenticated, and what that user may do is what the run may do.
//
// Factory.For returns a client.Client for an identity. Through it:
//
//	request                       how                                  cost
//	Get, List (not Secrets)       SubjectAccessReview of the identity  one SAR per identity, verb,
//	                              for verb, group, resource and        resource and namespace per
//	                              namespace, answer cached; allowed:   TTL, then the shared reader
//	                              the shared reader (the controller's  (no request)
//	                              cache); denied: the same request
//	                              sent impersonating the identity,
//	                              which decides (RBAC rules with
//	                              resourceNames pass there)
//	Get, List of Secrets          sent impersonating the identity,     one GET
//	                              never through the shared reader,
//	                              so no Secret lands in a cache
//	Create, Update, Patch         sent impersonating the identity      one request, as before
//	(server-side apply), Delete,  (Impersonate-User header; the API
//	DeleteAllOf, subresources     server adds the ServiceAccount groups)
//
// The shared reader is only used for a resource the controller itself may
// list and watch in every namespace (a cached self-review per resource):
// a reader backed by informers cannot serve other kinds, so those reads go
// to the API server as the identity.
//
// A denial, by review or by a 403 to an impersonated request, is a Denied
// error marked op.Permanent: the same request as the same identity cannot
// pass until someone changes RBAC, so the step fails instead of retrying.
// Its message names the identity, the verb and the object:
//
//	serviceaccount tenant-a/stepflow-runner may not get secrets "db" in namespace "platform"
//
// A controller that may not impersonate or send reviews is a broken
// install, not a tenant's denial: those errors name the controller's
// missing right and stay retryable.
//
// Reviews are cached for a short time (allowed answers ~1 minute, denied
// ones ~10 seconds), so a revoked right can still be used for up to a
// minute through the shared reader; writes are checked by the API server
// on every request. The cache and the per-identity clients are bounded;
// every identity's client shares the controller's HTTP transport and so
// its connections.
package tenancy
