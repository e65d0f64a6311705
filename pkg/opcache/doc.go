// Package opcache is what the kube ops read through: a client.Reader whose
// cache is bounded by what steps are using right now, not by the size of
// the cluster.
//
// The model:
//
//   - A scope is one kind in one namespace, or one cluster-scoped kind. Each
//     scope has its own informer, which lists and watches only that kind in
//     that namespace. It starts the first time a step reads (Get, List) or
//     waits on (Watch) the scope, and serves every later read of the scope
//     from memory: N reads of one kind in one namespace cost one LIST and
//     one WATCH, not N GETs.
//   - A scope lives while it is used. One nobody has read or waited on for
//     Options.IdleTimeout is stopped, unless Options.InUse says a step
//     still waits on it; at most Options.MaxInformers scopes run at once,
//     and starting one more stops the least recently used.
//   - Objects are stored without their managedFields.
//   - Some reads are never cached and always go to the API server (one GET
//     or LIST each): Secrets, whatever the namespace; lists across all
//     namespaces of a namespaced kind, lists with a field selector or a
//     page limit; and, for Options.ForbiddenRetry, a scope whose informer
//     was refused its LIST or WATCH (the controller may GET the kind but
//     not list or watch it) or got a 404 for it (the kind is no longer
//     served: its CRD was removed after the RESTMapper learnt it), rather
//     than retrying a failing informer, which would retry and log forever.
//   - Every add, update and delete an informer sees goes to Options.OnEvent,
//     which is how the controller's waker wakes steps waiting on objects.
//   - A Reader serves the one cluster Options.Config reaches: the
//     controller's own, or a named one (pkg/clusters gives each cluster
//     connection a Reader of its own, with that cluster's config).
//
// States of a scope:
//
//	(none) --read/Watch--> syncing --listed--> serving --idle/LRU--> (none)
//	                          |
//	                          +--LIST or WATCH forbidden or 404--> refused --ForbiddenRetry--> (none)
//
// A read waits while its scope syncs (at most Options.SyncTimeout, after
// which that read goes to the API server). Before Start, and after its
// context ends, every read goes to the API server.
package opcache
