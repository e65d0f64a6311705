package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// ReasonQueued is the reason of the Ready condition (False) of a run that
// waits in its queue for a running slot.
const ReasonQueued = "Queued"

// setupQueue feeds the admission structure from the runs' informer,
// starts admission once that informer has delivered every run, and lets
// it wake the runs it admits through c's queue.
func (r *RunReconciler) setupQueue(mgr ctrl.Manager, c controller.Controller) error {
	a := r.queue
	ctx := context.Background()
	// The Workflows' informer starts with the cache: queue names of runs
	// with a workflowRef are read from it in event handlers.
	if _, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.Workflow{}); err != nil {
		return err
	}
	inf, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.WorkflowRun{})
	if err != nil {
		return err
	}
	observe := func(obj any) {
		if run, ok := obj.(*v1alpha1.WorkflowRun); ok {
			a.see(run, func() string { return r.queueName(ctx, run) }, false)
		}
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(client.Object); ok {
				a.forget(types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()})
			}
		},
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
			a.markSynced()
		}
		return nil
	})); err != nil {
		return err
	}
	return c.Watch(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		a.bind(func(key types.NamespacedName) { q.Add(reconcile.Request{NamespacedName: key}) })
		return nil
	}))
}

// queueName is the run's queue, its Workflow read from the cache.
func (r *RunReconciler) queueName(ctx context.Context, run *v1alpha1.WorkflowRun) string {
	if run.Spec.Queue != "" || run.Spec.WorkflowRef == "" {
		return queueOf(run, nil)
	}
	var wf v1alpha1.Workflow
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}, &wf); err != nil {
		return queueOf(run, nil)
	}
	return queueOf(run, &wf)
}

// queueWait is the reconciler's gate: wait reports that the run holds no
// running slot and must not tick. A run that never started then shows
// where it waits: phase initializing, Ready False with reason Queued,
// status.queue and the message "waiting in queue Q at position N",
// written only when they change. A run resumed while the slots were
// taken waits without a write. The run is woken when it is admitted.
func (r *RunReconciler) queueWait(ctx context.Context, run *v1alpha1.WorkflowRun) (res ctrl.Result, wait bool, err error) {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	r.queue.see(run, func() string { return r.queueName(ctx, run) }, true)
	ok, queue, pos, since := r.queue.gate(key)
	if ok || !run.Status.StartTime.IsZero() {
		return ctrl.Result{}, !ok, nil
	}
	msg := fmt.Sprintf("waiting in queue %s at position %d", queue, pos)
	st := &run.Status
	if st.Queue != nil && st.Queue.Position == pos && st.Queue.Name == queue && st.Message == msg && st.Phase == v1alpha1.WorkflowRunInitializing {
		return ctrl.Result{}, true, nil
	}
	before := run.DeepCopy()
	st.Phase, st.Message = v1alpha1.WorkflowRunInitializing, msg
	s := metav1.NewTime(since)
	st.Queue = &v1alpha1.QueueStatus{Name: queue, Position: pos, Since: &s}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: ReasonQueued, Message: msg, ObservedGeneration: run.Generation})
	if err := r.Client.Status().Patch(ctx, run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return ctrl.Result{}, true, nil
		case apierrors.IsConflict(err):
			return ctrl.Result{RequeueAfter: staleRetry}, true, nil
		}
		return ctrl.Result{}, true, fmt.Errorf("writing the queue position of %s: %w", key, err)
	}
	r.own.set(key, run.UID, run.ResourceVersion)
	return ctrl.Result{}, true, nil
}

// admitted stamps the status a run's first tick produced with its queue
// and admission time: that tick's patch carries it, so admission costs no
// write of its own. Nil-safe: without queues it does nothing.
func (a *admission) admitted(run *v1alpha1.WorkflowRun, st *v1alpha1.WorkflowRunStatus, now metav1.Time) {
	if a == nil || !run.Status.StartTime.IsZero() {
		return
	}
	_, queue, _, since := a.gate(types.NamespacedName{Namespace: run.Namespace, Name: run.Name})
	if queue == "" {
		return
	}
	s := metav1.NewTime(since)
	st.Queue = &v1alpha1.QueueStatus{Name: queue, Since: &s, Admitted: &now}
}
