package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

var errNoWorkflow = errors.New("the run's Workflow does not exist")

// staleRetry is how soon a reconcile that found the cache behind, or lost a
// status write to someone else's, looks again.
const staleRetry = 50 * time.Millisecond

// RunReconciler runs one engine tick per reconcile of a WorkflowRun.
type RunReconciler struct {
	Client client.Client
	// Live reads from the API server itself (the manager's APIReader), for
	// a journal written from outside after the cache was filled.
	Live        client.Reader
	Evaluator   engine.Evaluator
	Ops         op.Runner
	Definitions definition.Cluster
	Recorder    record.EventRecorder
	Logs        op.LogSink
	Debug       engine.Debug
	// Waker, when set, is the kube ops' Observer: it wakes runs whose
	// steps looked at an object that changed.
	Waker *Waker
	// Metrics, when set, count run and step transitions.
	Metrics *Metrics
	// Callbacks, when set, records the transitions of runs with a
	// callback in the status write that makes them (callback.go).
	Callbacks *Callbacks
	// queue, when queue caps are configured, admits runs (queue.go).
	queue *admission
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Parallelism bounds the steps of one run evaluated at once.
	Parallelism int
	// Limiter, when step rate limits are configured, paces the starts of
	// steps by type (ratelimit.go).
	Limiter engine.Limiter
	// DefaultServiceAccount is the identity of a run that names none and
	// whose Workflow names none.
	DefaultServiceAccount string

	once sync.Once
	memo *kubestore.Memo
	own  *ownWrites
}

func (r *RunReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile implements reconcile.Reconciler.
func (r *RunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	now := r.now
	var run v1alpha1.WorkflowRun
	if err := r.Client.Get(ctx, req.NamespacedName, &run); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName, "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.own.stale(req.NamespacedName, run.UID, run.ResourceVersion) {
		// The cache has not seen our last status write yet; a tick on this
		// copy would redo steps and could undo a resume written since.
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	if r.Waker != nil {
		r.Waker.forget(req.NamespacedName)
	}
	if run.Status.Finished || !run.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName, run.UID)
		return ctrl.Result{}, nil
	}
	if r.queue != nil {
		if res, wait, err := r.queueWait(ctx, &run); wait || err != nil {
			return res, err
		}
	}
	steps, mode, sa, orch, err := r.resolve(ctx, &run)
	if errors.Is(err, errNoWorkflow) {
		before := run.DeepCopy()
		run.Status.Phase, run.Status.Finished = v1alpha1.WorkflowRunFailed, true
		run.Status.Message = err.Error()
		run.Status.EndTime = metav1.NewTime(now())
		for _, c := range []struct {
			typ    string
			status metav1.ConditionStatus
		}{{v1alpha1.ConditionReady, metav1.ConditionFalse}, {v1alpha1.ConditionSucceeded, metav1.ConditionFalse},
			{v1alpha1.ConditionFailed, metav1.ConditionTrue}, {v1alpha1.ConditionSuspended, metav1.ConditionFalse}} {
			meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{Type: c.typ, Status: c.status,
				Reason: "WorkflowNotFound", Message: err.Error(), ObservedGeneration: run.Generation})
		}
		r.Callbacks.record(ctx, before, &run.Status, now())
		return ctrl.Result{}, r.Client.Status().Patch(ctx, &run, client.MergeFrom(before))
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	r.own.track(req.NamespacedName, run.UID)
	store := kubestore.New(r.Client, &run, r.memo).WithLive(r.Live)
	j, err := journal.Open(ctx, store, journal.Limits{})
	if err != nil {
		return ctrl.Result{}, err
	}
	j.WithClock(now) // #Log lines carry the engine's time
	debug := r.Debug
	var values debugValues
	if run.Annotations[engine.DebugAnnotation] == "true" && debug == nil {
		values = debugValues{}
		debug = values
	}
	res, err := engine.Tick(ctx, engine.Input{
		Run: &run, Steps: steps, Mode: mode, ServiceAccount: sa,
		Definitions: r.Definitions.For(ctx, run.Namespace),
		Evaluator:   r.Evaluator, Ops: r.Ops, Journal: j, Now: now,
		Logs: logSink(r.Logs, j), Debug: debug, Parallelism: r.Parallelism, Limiter: r.Limiter,
		Orchestration: &orch,
	})
	if refusedForSize(err) {
		return r.failRefused(ctx, &run, "journal", j.Size(), err)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	r.queue.admitted(&run, &res.Status, metav1.NewTime(now()))
	if err := values.save(ctx, r.Client, &run, res.Failed, now()); err != nil {
		log.FromContext(ctx).Error(err, "keeping debug values")
	}
	if store.Created() || (store.Exists() && run.Status.ContextBackend == nil) {
		res.Status.ContextBackend = store.Reference()
	}
	r.Callbacks.record(ctx, &run, &res.Status, now())
	if !equality.Semantic.DeepEqual(run.Status, res.Status) {
		before := run.DeepCopy()
		run.Status = res.Status
		// Optimistic lock: a status changed since we read it (a resume, a
		// terminate) wins, and the next tick sees it.
		if err := r.Client.Status().Patch(ctx, &run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsNotFound(err) {
				r.forget(req.NamespacedName, run.UID)
				return ctrl.Result{}, nil
			}
			if refusedForSize(err) {
				size := 0
				if b, merr := json.Marshal(run.Status); merr == nil {
					size = len(b)
				}
				return r.failRefused(ctx, before, "status", size, err)
			}
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: staleRetry}, nil
			}
			return ctrl.Result{}, fmt.Errorf("writing status of %s: %w", req.NamespacedName, err)
		}
		r.own.set(req.NamespacedName, run.UID, run.ResourceVersion)
		r.recordTransitions(&run, before)
		r.Metrics.observe(&before.Status, &run.Status)
	}
	if res.WakeAt.IsZero() {
		return ctrl.Result{}, nil
	}
	after := res.WakeAt.Sub(now())
	if after <= 0 {
		after = time.Millisecond
	}
	log.FromContext(ctx).V(1).Info("tick done", "phase", run.Status.Phase, "wake", after)
	return ctrl.Result{RequeueAfter: after}, nil
}

// resolve returns the run's steps: its own workflowSpec, or the Workflow
// named by workflowRef in its namespace; and the ServiceAccount its ops
// act as: its own, else the Workflow's, else the default; and its
// orchestration (onFailure, ...), its own fields over the Workflow's.
func (r *RunReconciler) resolve(ctx context.Context, run *v1alpha1.WorkflowRun) ([]v1alpha1.WorkflowStep, *v1alpha1.WorkflowExecuteMode, string, v1alpha1.Orchestration, error) {
	own := tenancy.Resolve(run.Spec.ServiceAccountName, "", r.DefaultServiceAccount)
	if run.Spec.WorkflowSpec != nil {
		return run.Spec.WorkflowSpec.Steps, run.Spec.Mode, own, run.Spec.Orchestration, nil
	}
	if run.Spec.WorkflowRef == "" {
		return nil, run.Spec.Mode, own, run.Spec.Orchestration, nil
	}
	var wf v1alpha1.Workflow
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}, &wf)
	if apierrors.IsNotFound(err) {
		return nil, nil, "", v1alpha1.Orchestration{}, fmt.Errorf("%w: workflowRef %q: no Workflow %s/%s", errNoWorkflow, run.Spec.WorkflowRef, run.Namespace, run.Spec.WorkflowRef)
	}
	if err != nil {
		return nil, nil, "", v1alpha1.Orchestration{}, err
	}
	mode := run.Spec.Mode
	if mode == nil {
		mode = wf.Mode
	}
	return wf.Steps, mode, tenancy.Resolve(run.Spec.ServiceAccountName, wf.ServiceAccountName, r.DefaultServiceAccount),
		engine.ResolveOrchestration(run, &wf), nil
}

// recordTransitions emits at most one event per tick: when the tick
// started the run, made a step fail or suspend, or finished the run; it
// lists every step the tick moved (a Warning when one failed). So every
// run gets an event when it starts (folded into the finishing one when
// its first tick finishes it), and the steps its first tick succeeded are
// named in it. A later tick in which steps only succeeded on the way, the
// run still going, emits none: each event is an API request, and a run
// should cost a handful. Step phases and times are in the status and the
// step metrics.
func (r *RunReconciler) recordTransitions(run, before *v1alpha1.WorkflowRun) {
	if r.Recorder == nil {
		return
	}
	old := map[string]v1alpha1.WorkflowStepPhase{}
	for _, s := range before.Status.Steps {
		old[s.Name] = s.Phase
	}
	var moved []string
	finished := run.Status.Finished && !before.Status.Finished
	started := len(before.Status.Steps) == 0 && len(run.Status.Steps) > 0
	warn, notable := false, finished || started
	for _, s := range run.Status.Steps {
		if s.Phase == old[s.Name] {
			continue
		}
		switch s.Phase {
		case v1alpha1.WorkflowStepPhaseFailed:
			warn = true
			moved = append(moved, fmt.Sprintf("%s failed (%s): %s", s.Name, s.Reason, s.Message))
		case v1alpha1.WorkflowStepPhaseSuspending:
			notable = true
			moved = append(moved, fmt.Sprintf("%s %s", s.Name, s.Phase))
		case v1alpha1.WorkflowStepPhaseSucceeded, v1alpha1.WorkflowStepPhaseSkipped:
			moved = append(moved, fmt.Sprintf("%s %s", s.Name, s.Phase))
		}
	}
	if !warn && !notable {
		return
	}
	typ, reason := corev1.EventTypeNormal, "StepsProgressed"
	switch {
	case warn:
		typ, reason = corev1.EventTypeWarning, "StepFailed"
	case started && !finished && len(moved) == 0:
		reason = "Started"
	}
	var parts []string
	switch {
	case finished:
		parts = append(parts, fmt.Sprintf("run %s", run.Status.Phase))
	case started:
		parts = append(parts, "run started")
	}
	if len(moved) > 0 {
		parts = append(parts, "steps: "+strings.Join(moved, "; "))
	}
	r.Recorder.Event(run, typ, reason, strings.Join(parts, "; "))
}

// logSink keeps #Log output in the run's journal (for `stepflow logs`) and
// passes it on to extra, if set.
func logSink(extra op.LogSink, j *journal.Journal) op.LogSink {
	if extra == nil {
		return j
	}
	return op.LogSinkFunc(func(s op.Step, level int, line string) {
		j.StepLog(s, level, line)
		extra.StepLog(s, level, line)
	})
}
