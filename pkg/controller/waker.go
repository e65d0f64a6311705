package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// objKey is an object's cluster ("" for the local one), kind, namespace
// and name; an empty name stands for every object of the kind in the
// namespace (a list).
type objKey struct {
	Cluster   string
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

// Waker wakes runs when an object one of their steps looked at changes, so
// a step waiting for an object to become ready continues as soon as the
// object's watch event arrives instead of at its next poll. It is the kube
// op family's Observer: every apply, read and list reports its object, and
// the waker asks its Watcher (the ops' reader, pkg/opcache) to watch that
// kind in that namespace; the reader's informers hand every event back to
// Notify. An object on a named cluster is watched the same way through the
// RemoteWatcher (pkg/clusters: a reader per cluster connection), whose
// events come back to NotifyIn with the cluster's name; runs are keyed by
// cluster too, so an event on one cluster wakes no run that looked at the
// same name on another. A list across all namespaces starts no watch:
// such a step polls.
type Waker struct {
	mu      sync.Mutex
	byObj   map[objKey]map[types.NamespacedName]struct{}
	byRun   map[types.NamespacedName][]objKey
	watcher Watcher
	remote  RemoteWatcher
	queue   workqueue.TypedRateLimitingInterface[reconcile.Request]
	errs    func(error)
}

// Watcher starts, or keeps alive, a watch of a kind in a namespace ("" for
// a cluster-scoped kind) whose events reach Waker.Notify: opcache.Reader.
type Watcher interface {
	Watch(gvk schema.GroupVersionKind, namespace string) error
}

// RemoteWatcher is Watcher for named clusters: clusters.Registry.
type RemoteWatcher interface {
	Watch(cluster string, gvk schema.GroupVersionKind, namespace string) error
}

// NewWaker returns a waker; the reconciler's setup binds it to its queue,
// and Setup to the ops' reader.
func NewWaker() *Waker {
	return &Waker{
		byObj: map[objKey]map[types.NamespacedName]struct{}{},
		byRun: map[types.NamespacedName][]objKey{},
	}
}

// Observe implements kube.Observer.
func (w *Waker) Observe(step op.Step, cluster string, gvk schema.GroupVersionKind, namespace, name string) {
	if cluster == kube.LocalCluster {
		cluster = ""
	}
	run := types.NamespacedName{Namespace: step.Namespace, Name: step.RunName}
	key := objKey{Cluster: cluster, GVK: gvk, Namespace: namespace, Name: name}
	w.mu.Lock()
	runs := w.byObj[key]
	if runs == nil {
		runs = map[types.NamespacedName]struct{}{}
		w.byObj[key] = runs
	}
	if _, ok := runs[run]; !ok {
		runs[run] = struct{}{}
		w.byRun[run] = append(w.byRun[run], key)
	}
	watcher, remote, errs := w.watcher, w.remote, w.errs
	w.mu.Unlock()
	// Outside the lock: a watch delivers events to Notify.
	var err error
	switch {
	case cluster == "" && watcher != nil:
		err = watcher.Watch(gvk, namespace)
	case cluster != "" && remote != nil:
		err = remote.Watch(cluster, gvk, namespace)
	}
	if err != nil && errs != nil {
		errs(err)
	}
}

// Notify enqueues the runs that looked at obj (or listed its kind in its
// namespace): the Watcher's informers call it with every event.
func (w *Waker) Notify(obj client.Object) { w.NotifyIn("", obj) }

// NotifyIn is Notify for an object of cluster ("" for the local one): a
// named cluster's reader calls it with every event.
func (w *Waker) NotifyIn(cluster string, obj client.Object) {
	w.mu.Lock()
	q := w.queue
	w.mu.Unlock()
	if q == nil {
		return
	}
	for _, req := range w.runsFor(cluster, obj) {
		q.Add(req)
	}
}

// Waits reports whether a run still waits on an object of gvk in
// namespace ("" for a cluster-scoped kind) of the local cluster: the ops'
// reader keeps that watch running.
func (w *Waker) Waits(gvk schema.GroupVersionKind, namespace string) bool {
	return w.WaitsIn("", gvk, namespace)
}

// WaitsIn is Waits for cluster ("" for the local one).
func (w *Waker) WaitsIn(cluster string, gvk schema.GroupVersionKind, namespace string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key := range w.byObj {
		if key.Cluster == cluster && key.GVK == gvk && key.Namespace == namespace {
			return true
		}
	}
	return false
}

// bind gives the waker the run controller's queue.
func (w *Waker) bind(q workqueue.TypedRateLimitingInterface[reconcile.Request], errs func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queue, w.errs = q, errs
}

// WatchWith makes the waker start watches through watcher.
func (w *Waker) WatchWith(watcher Watcher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watcher = watcher
}

// WatchRemoteWith makes the waker start watches of named clusters'
// objects through remote.
func (w *Waker) WatchRemoteWith(remote RemoteWatcher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.remote = remote
}

// forget drops what a run looked at; its next tick reports it again.
func (w *Waker) forget(run types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, key := range w.byRun[run] {
		delete(w.byObj[key], run)
		if len(w.byObj[key]) == 0 {
			delete(w.byObj, key)
		}
	}
	delete(w.byRun, run)
}

// runsFor maps an object's event to the runs that looked at it (or listed
// its kind in its namespace).
func (w *Waker) runsFor(cluster string, obj client.Object) []reconcile.Request {
	gvk := obj.GetObjectKind().GroupVersionKind()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []reconcile.Request
	for _, key := range []objKey{
		{Cluster: cluster, GVK: gvk, Namespace: obj.GetNamespace(), Name: obj.GetName()},
		{Cluster: cluster, GVK: gvk, Namespace: obj.GetNamespace()},
		{Cluster: cluster, GVK: gvk},
	} {
		for run := range w.byObj[key] {
			out = append(out, reconcile.Request{NamespacedName: run})
		}
	}
	return out
}
