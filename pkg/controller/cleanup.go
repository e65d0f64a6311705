package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// CleanupConfig is a section of Config: which finished runs the
// controller deletes on its own. Runs also set their own TTL
// (spec.ttlSecondsAfterFinished), and Workflows and WorkflowSchedules
// their history limits.
type CleanupConfig struct {
	// TTLSecondsAfterFinished is the ttlSecondsAfterFinished of a run that
	// sets none. Unset (the default), such runs are kept.
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// RollbackTargets is how many of the newest succeeded DEPLOY runs of
	// each application and scope are never deleted, by TTL or history
	// limits: the runs a rollback step returns to (default and minimum 3).
	RollbackTargets int `json:"rollbackTargets,omitempty"`
}

// DefaultRollbackTargets is CleanupConfig.RollbackTargets by default, and
// its minimum.
const DefaultRollbackTargets = 3

// CategoryDeploy is the category (app.LabelCategory) of the runs that
// deploy an application: their newest succeeded ones are rollback targets.
const CategoryDeploy = app.CategoryDeploy

// Keys of the cleanup reconciler: its requests name a run, or a group of
// runs to hold to a history limit, by a prefix no Kubernetes name has.
const (
	cleanupRun      = "run/"
	cleanupWorkflow = "workflow/"
	cleanupSchedule = "schedule/"
	cleanupApp      = "app/"
)

// indexWorkflowRef indexes runs by spec.workflowRef (of runs without
// inline steps), for the history of a Workflow.
const indexWorkflowRef = "stepflow.dev/cleanup-workflowRef"

// CleanupReconciler deletes finished runs: a run
// ttlSecondsAfterFinished (its own, else Config's) after its status.endTime,
// woken exactly then; and the runs over a Workflow's or a schedule's
// history limits, the oldest first, when one of them finishes. What a run
// owns (its journal, debug and configuration ConfigMaps) goes with it, by
// the garbage collector. The newest Config.RollbackTargets succeeded DEPLOY
// runs of each application and scope are never deleted.
//
// It does nothing until a run finishes; everything it reads comes from the
// cache, and a run it deletes is one DELETE request.
type CleanupReconciler struct {
	Client   client.Client
	Config   CleanupConfig
	Recorder record.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (r *CleanupReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ttl is the run's time to live after it finished, or nil: kept.
func (r *CleanupReconciler) ttl(run *v1alpha1.WorkflowRun) *int32 {
	if run.Spec.TTLSecondsAfterFinished != nil {
		return run.Spec.TTLSecondsAfterFinished
	}
	return r.Config.TTLSecondsAfterFinished
}

// keys are the cleanup requests a run's event makes: none until it has
// finished.
func (r *CleanupReconciler) keys(run *v1alpha1.WorkflowRun) []reconcile.Request {
	if !run.Status.Finished {
		return nil
	}
	var keys []reconcile.Request
	add := func(name string) {
		keys = append(keys, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: run.Namespace, Name: name}})
	}
	if r.ttl(run) != nil {
		add(cleanupRun + run.Name)
	}
	if run.Spec.WorkflowSpec == nil && run.Spec.WorkflowRef != "" {
		add(cleanupWorkflow + run.Spec.WorkflowRef)
	}
	if o := metav1.GetControllerOf(run); o != nil && o.Kind == scheduleKind.Kind && strings.HasPrefix(o.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		add(cleanupSchedule + o.Name)
	}
	if id, scope, ok := app.RollbackTarget(run); ok {
		add(cleanupApp + id + "/" + scope)
	}
	return keys
}

// Reconcile implements reconcile.Reconciler.
func (r *CleanupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns, name := req.Namespace, req.Name
	switch {
	case strings.HasPrefix(name, cleanupRun):
		return r.expire(ctx, types.NamespacedName{Namespace: ns, Name: strings.TrimPrefix(name, cleanupRun)})
	case strings.HasPrefix(name, cleanupWorkflow):
		return ctrl.Result{}, r.workflowHistory(ctx, types.NamespacedName{Namespace: ns, Name: strings.TrimPrefix(name, cleanupWorkflow)})
	case strings.HasPrefix(name, cleanupSchedule):
		return ctrl.Result{}, r.scheduleHistory(ctx, types.NamespacedName{Namespace: ns, Name: strings.TrimPrefix(name, cleanupSchedule)})
	case strings.HasPrefix(name, cleanupApp):
		id, scope, _ := strings.Cut(strings.TrimPrefix(name, cleanupApp), "/")
		return ctrl.Result{}, r.formerTargets(ctx, ns, id, scope)
	}
	return ctrl.Result{}, nil
}

// expiry is when a finished run's TTL runs out, or false: never.
func (r *CleanupReconciler) expiry(run *v1alpha1.WorkflowRun) (time.Time, bool) {
	ttl := r.ttl(run)
	if ttl == nil || !run.Status.Finished {
		return time.Time{}, false
	}
	end := run.Status.EndTime.Time
	if end.IsZero() {
		end = run.CreationTimestamp.Time
	}
	return end.Add(time.Duration(*ttl) * time.Second), true
}

// expire deletes the run once its TTL has run out, or asks to be called
// again exactly then.
func (r *CleanupReconciler) expire(ctx context.Context, key types.NamespacedName) (ctrl.Result, error) {
	var run v1alpha1.WorkflowRun
	if err := r.Client.Get(ctx, key, &run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	at, ok := r.expiry(&run)
	if !ok || !run.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if left := at.Sub(r.now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	targets := rollbackTargets{}
	keep, err := targets.has(ctx, r, &run)
	if err != nil || keep {
		// A target that stops being one is looked at again when a newer
		// DEPLOY run of its application succeeds (formerTargets).
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.delete(ctx, &run, fmt.Sprintf("its ttlSecondsAfterFinished (%ds) ran out", *r.ttl(&run)))
}

// workflowHistory holds the runs of a Workflow (workflowRef, no inline
// steps) to its history limits.
func (r *CleanupReconciler) workflowHistory(ctx context.Context, key types.NamespacedName) error {
	var wf v1alpha1.Workflow
	if err := r.Client.Get(ctx, key, &wf); err != nil {
		return client.IgnoreNotFound(err)
	}
	if wf.SuccessfulRunsHistoryLimit == nil && wf.FailedRunsHistoryLimit == nil {
		return nil
	}
	var list v1alpha1.WorkflowRunList
	if err := r.Client.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingFields{indexWorkflowRef: key.Name}); err != nil {
		return fmt.Errorf("listing the runs of workflow %s: %w", key, err)
	}
	return r.prune(ctx, list.Items, wf.SuccessfulRunsHistoryLimit, wf.FailedRunsHistoryLimit, "workflow "+key.Name)
}

// scheduleHistory holds the runs of a schedule to its history limits
// (default 3 succeeded, 1 failed).
func (r *CleanupReconciler) scheduleHistory(ctx context.Context, key types.NamespacedName) error {
	var s v1alpha1.WorkflowSchedule
	if err := r.Client.Get(ctx, key, &s); err != nil {
		return client.IgnoreNotFound(err)
	}
	runs, err := scheduleRuns(ctx, r.Client, &s)
	if err != nil {
		return err
	}
	ok, failed := int32(3), int32(1)
	if s.Spec.SuccessfulRunsHistoryLimit != nil {
		ok = *s.Spec.SuccessfulRunsHistoryLimit
	}
	if s.Spec.FailedRunsHistoryLimit != nil {
		failed = *s.Spec.FailedRunsHistoryLimit
	}
	return r.prune(ctx, runs, &ok, &failed, "workflowschedule "+key.Name)
}

// prune deletes the finished runs beyond the newest okLimit succeeded (or
// skipped) and the newest failedLimit others (failed, terminated, rolled
// back); a nil limit keeps them all. Rollback targets are kept and do not
// count.
func (r *CleanupReconciler) prune(ctx context.Context, runs []v1alpha1.WorkflowRun, okLimit, failedLimit *int32, whose string) error {
	var ok, failed []*v1alpha1.WorkflowRun
	for i := range runs {
		run := &runs[i]
		switch {
		case !run.Status.Finished || !run.DeletionTimestamp.IsZero():
		case succeeded(run):
			ok = append(ok, run)
		default:
			failed = append(failed, run)
		}
	}
	targets := rollbackTargets{}
	for _, g := range []struct {
		runs  []*v1alpha1.WorkflowRun
		limit *int32
		what  string
	}{{ok, okLimit, "successfulRunsHistoryLimit"}, {failed, failedLimit, "failedRunsHistoryLimit"}} {
		if g.limit == nil || len(g.runs) <= int(*g.limit) {
			continue
		}
		app.SortNewestFirst(g.runs)
		kept := 0
		for _, run := range g.runs {
			keep, err := targets.has(ctx, r, run)
			if err != nil {
				return err
			}
			if keep {
				continue
			}
			if kept < int(*g.limit) {
				kept++
				continue
			}
			if err := r.delete(ctx, run, fmt.Sprintf("the %s of its %s (%d) was reached", g.what, whose, *g.limit)); err != nil {
				return err
			}
		}
	}
	return nil
}

// formerTargets deletes the runs of an application and scope that are no
// longer rollback targets (a newer DEPLOY run succeeded) and whose TTL
// ran out while they were.
func (r *CleanupReconciler) formerTargets(ctx context.Context, ns, appID, scope string) error {
	runs, err := r.deployRuns(ctx, ns, appID, scope)
	if err != nil {
		return err
	}
	now := r.now()
	for i, run := range runs {
		if i < r.keepTargets() {
			continue
		}
		if at, ok := r.expiry(run); ok && !at.After(now) && run.DeletionTimestamp.IsZero() {
			if err := r.delete(ctx, run, fmt.Sprintf("its ttlSecondsAfterFinished (%ds) ran out and it is no longer one of the %d newest succeeded DEPLOY runs of its application", *r.ttl(run), r.keepTargets())); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *CleanupReconciler) keepTargets() int {
	return max(r.Config.RollbackTargets, DefaultRollbackTargets)
}

// deployRuns are the rollback targets of an application and scope (its
// succeeded DEPLOY runs), newest first: app.RollbackTargets.
func (r *CleanupReconciler) deployRuns(ctx context.Context, ns, appID, scope string) ([]*v1alpha1.WorkflowRun, error) {
	var list v1alpha1.WorkflowRunList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{
		app.LabelAppID: appID, app.LabelScope: scope, app.LabelCategory: CategoryDeploy}); err != nil {
		return nil, fmt.Errorf("listing the DEPLOY runs of app %s, scope %s in namespace %s: %w", appID, scope, ns, err)
	}
	runs := make([]*v1alpha1.WorkflowRun, len(list.Items))
	for i := range list.Items {
		runs[i] = &list.Items[i]
	}
	return app.RollbackTargets(runs), nil
}

// rollbackTargets caches, for one reconcile, the rollback targets of each
// application and scope it looked at.
type rollbackTargets map[string]map[string]bool

// has reports whether the run is one of the newest succeeded DEPLOY runs
// of its application and scope, which are never deleted.
func (t rollbackTargets) has(ctx context.Context, r *CleanupReconciler, run *v1alpha1.WorkflowRun) (bool, error) {
	appID, scope, ok := app.RollbackTarget(run)
	if !ok {
		return false, nil
	}
	k := run.Namespace + "/" + appID + "/" + scope
	names, seen := t[k]
	if !seen {
		runs, err := r.deployRuns(ctx, run.Namespace, appID, scope)
		if err != nil {
			return false, err
		}
		names = map[string]bool{}
		for i := 0; i < len(runs) && i < r.keepTargets(); i++ {
			names[runs[i].Name] = true
		}
		t[k] = names
	}
	return names[run.Name], nil
}

// delete deletes a finished run, only the one read (its UID), in the
// background: the garbage collector deletes what it owns.
func (r *CleanupReconciler) delete(ctx context.Context, run *v1alpha1.WorkflowRun, why string) error {
	err := r.Client.Delete(ctx, run, client.Preconditions{UID: &run.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting finished workflowrun %s/%s (%s): %w", run.Namespace, run.Name, why, err)
	}
	log.FromContext(ctx).Info("deleted finished run", "run", run.Namespace+"/"+run.Name, "why", why)
	return nil
}

// setup registers the reconciler: finished runs' events map to the
// run's TTL and to the history groups it is in; a Workflow's or a
// schedule's change to its group.
func (r *CleanupReconciler) setup(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.WorkflowRun{}, indexWorkflowRef, func(o client.Object) []string {
		run, ok := o.(*v1alpha1.WorkflowRun)
		if !ok || run.Spec.WorkflowSpec != nil || run.Spec.WorkflowRef == "" {
			return nil
		}
		return []string{run.Spec.WorkflowRef}
	}); err != nil {
		return fmt.Errorf("indexing workflowruns by workflowRef: %w", err)
	}
	group := func(prefix string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: prefix + o.GetName()}}}
		})
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("workflowrun-cleanup").
		Watches(&v1alpha1.WorkflowRun{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if run, ok := o.(*v1alpha1.WorkflowRun); ok && run.DeletionTimestamp.IsZero() {
				return r.keys(run)
			}
			return nil
		})).
		Watches(&v1alpha1.Workflow{}, group(cleanupWorkflow), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.WorkflowSchedule{}, group(cleanupSchedule), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
