package controller

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// objKey is an object's kind, namespace and name; an empty name stands for
// every object of the kind in the namespace (a list).
type objKey struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

// Waker wakes runs when an object one of their steps looked at changes, so
// a step waiting for an object to become ready continues as soon as the
// object's watch event arrives instead of at its next poll. It is the kube
// op family's Observer: every apply, read and list reports its object, and
// the first object of a kind starts a watch of that kind.
type Waker struct {
	mu      sync.Mutex
	byObj   map[objKey]map[types.NamespacedName]struct{}
	byRun   map[types.NamespacedName][]objKey
	watched map[schema.GroupVersionKind]bool
	ctrl    controller.Controller
	cache   cache.Cache
	errs    func(error)
}

// NewWaker returns a waker; the reconciler's SetupWithManager binds it.
func NewWaker() *Waker {
	return &Waker{
		byObj:   map[objKey]map[types.NamespacedName]struct{}{},
		byRun:   map[types.NamespacedName][]objKey{},
		watched: map[schema.GroupVersionKind]bool{},
	}
}

// Observe implements kube.Observer.
func (w *Waker) Observe(step op.Step, cluster string, gvk schema.GroupVersionKind, namespace, name string) {
	if cluster != "" && cluster != "local" {
		return
	}
	run := types.NamespacedName{Namespace: step.Namespace, Name: step.RunName}
	key := objKey{GVK: gvk, Namespace: namespace, Name: name}
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
	start := !w.watched[gvk] && w.ctrl != nil
	if start {
		w.watched[gvk] = true
	}
	c, ca := w.ctrl, w.cache
	w.mu.Unlock()
	if !start {
		return
	}
	// Outside the lock: starting a watch delivers events to runsFor.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.Watch(source.Kind(ca, client.Object(u), handler.EnqueueRequestsFromMapFunc(w.runsFor))); err != nil {
		w.mu.Lock()
		w.watched[gvk] = false
		w.mu.Unlock()
		if w.errs != nil {
			w.errs(err)
		}
	}
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
func (w *Waker) runsFor(_ context.Context, obj client.Object) []reconcile.Request {
	gvk := obj.GetObjectKind().GroupVersionKind()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []reconcile.Request
	for _, key := range []objKey{
		{GVK: gvk, Namespace: obj.GetNamespace(), Name: obj.GetName()},
		{GVK: gvk, Namespace: obj.GetNamespace()},
		{GVK: gvk},
	} {
		for run := range w.byObj[key] {
			out = append(out, reconcile.Request{NamespacedName: run})
		}
	}
	return out
}
