package controller

import (
	"context"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// ownWrites remembers, for each run this controller is moving, its UID and
// the resourceVersion of the controller's last status patch, so the watch
// event that patch causes does not trigger a pointless tick, and a tick on
// a cached copy older than that patch is not made. An entry lives while
// the run does: it goes when the run finishes (once the cache has the
// finished copy) or is deleted.
type ownWrites struct {
	mu   sync.Mutex
	runs map[types.NamespacedName]ownRun
}

type ownRun struct {
	uid types.UID
	rv  string
}

func newOwnWrites() *ownWrites { return &ownWrites{runs: map[types.NamespacedName]ownRun{}} }

// track notes that this controller holds state (a journal copy) for the
// run, so a reconcile that finds it deleted can drop that state by name.
func (o *ownWrites) track(name types.NamespacedName, uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r, ok := o.runs[name]; !ok || r.uid != uid {
		o.runs[name] = ownRun{uid: uid}
	}
}

func (o *ownWrites) set(name types.NamespacedName, uid types.UID, rv string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs[name] = ownRun{uid: uid, rv: rv}
}

// stale reports whether rv is older than this controller's last write of
// the run: the cache has not caught up with it yet.
func (o *ownWrites) stale(name types.NamespacedName, uid types.UID, rv string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	mine, ok := o.runs[name]
	if !ok || mine.uid != uid {
		return false
	}
	a, err1 := strconv.ParseUint(rv, 10, 64)
	b, err2 := strconv.ParseUint(mine.rv, 10, 64)
	return err1 == nil && err2 == nil && a < b
}

func (o *ownWrites) isOwn(name types.NamespacedName, uid types.UID, rv string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.runs[name]
	return ok && r.uid == uid && r.rv != "" && r.rv == rv
}

// forget drops the entry of the run and returns the UID it had.
func (o *ownWrites) forget(name types.NamespacedName) (types.UID, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.runs[name]
	delete(o.runs, name)
	return r.uid, ok
}

func (o *ownWrites) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.runs)
}

// forget drops everything the reconciler keeps in memory for a run that
// is finished or gone: its journal copy, its own-write entry and what its
// steps looked at.
func (r *RunReconciler) forget(name types.NamespacedName, uid types.UID) {
	if tracked, ok := r.own.forget(name); ok && tracked != uid && uid != "" {
		r.memo.Forget(tracked)
	}
	if uid != "" {
		r.memo.Forget(uid)
	}
	if r.Waker != nil {
		r.Waker.forget(name)
	}
	if uid == "" && r.queue != nil {
		// Not found: whatever slot it held is free.
		r.queue.forget(name)
	}
}

// runEvents filters the run's watch events: an update that is this
// controller's own status patch needs no tick; a run seen finished or
// deleted has its memory dropped here, because the event of the patch
// that finished it is one of those filtered out.
func (r *RunReconciler) runEvents() predicate.Funcs {
	key := func(o client.Object) types.NamespacedName {
		return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
	}
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			obj := e.ObjectNew
			own := r.own.isOwn(key(obj), obj.GetUID(), obj.GetResourceVersion())
			if run, ok := obj.(*v1alpha1.WorkflowRun); ok && run.Status.Finished && own {
				r.forget(key(obj), obj.GetUID())
			}
			return !own
		},
		DeleteFunc: func(e event.DeleteEvent) bool {
			// The reconcile this event triggers comes after any reconcile
			// of the run still in flight, and drops what that one kept.
			r.forget(key(e.Object), e.Object.GetUID())
			return true
		},
	}
}

// setup registers the reconciler with at most maxConcurrent reconciles at
// once; Setup calls it.
func (r *RunReconciler) setup(mgr ctrl.Manager, maxConcurrent int) error {
	r.init()
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.WorkflowRun{}, builder.WithPredicates(r.runEvents())).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Build(r)
	if err != nil {
		return err
	}
	if r.queue != nil {
		if err := r.setupQueue(mgr, c); err != nil {
			return err
		}
	}
	if r.Waker != nil {
		// The waker enqueues the runs its objects' events concern.
		errs := func(err error) { mgr.GetLogger().Error(err, "watching objects for waiting steps") }
		return c.Watch(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			r.Waker.bind(q, errs)
			return nil
		}))
	}
	return nil
}

func (r *RunReconciler) init() {
	r.once.Do(func() {
		if r.memo == nil {
			r.memo = kubestore.NewMemo()
		}
		if r.own == nil {
			r.own = newOwnWrites()
		}
	})
}
