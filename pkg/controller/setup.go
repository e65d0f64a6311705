package controller

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// ownWrites remembers the resourceVersion of each run's last status patch
// by this controller, so the watch event it causes does not trigger a
// pointless tick.
type ownWrites struct {
	mu sync.Mutex
	rv map[types.UID]string
}

func (o *ownWrites) set(uid types.UID, rv string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rv[uid] = rv
}

// stale reports whether rv is older than this controller's last write of
// the run: the cache has not caught up with it yet.
func (o *ownWrites) stale(uid types.UID, rv string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	mine, ok := o.rv[uid]
	if !ok {
		return false
	}
	a, err1 := strconv.ParseUint(rv, 10, 64)
	b, err2 := strconv.ParseUint(mine, 10, 64)
	return err1 == nil && err2 == nil && a < b
}

func (o *ownWrites) isOwn(uid types.UID, rv string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rv[uid] == rv
}

// SetupWithManager registers the reconciler with at most maxConcurrent
// reconciles at once.
func (r *RunReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrent int) error {
	if r.memo == nil {
		r.memo = kubestore.NewMemo()
	}
	if r.own == nil {
		r.own = &ownWrites{rv: map[types.UID]string{}}
	}
	if maxConcurrent <= 0 {
		maxConcurrent = 4
	}
	notOwn := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !r.own.isOwn(e.ObjectNew.GetUID(), e.ObjectNew.GetResourceVersion())
	}}
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.WorkflowRun{}, builder.WithPredicates(notOwn)).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Build(r)
	if err != nil {
		return err
	}
	if r.Waker != nil {
		r.Waker.mu.Lock()
		r.Waker.ctrl, r.Waker.cache = c, mgr.GetCache()
		r.Waker.errs = func(err error) { mgr.GetLogger().Error(err, "watching objects for waiting steps") }
		r.Waker.mu.Unlock()
	}
	return nil
}
