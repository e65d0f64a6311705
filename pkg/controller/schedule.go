package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// LabelSchedule is on every run a WorkflowSchedule created: the schedule's
// name (app.LabelValue of it, for a name too long to be a label value).
// The run is also owned by the schedule, which is what counts: the label
// only lets the schedule's runs be listed.
const LabelSchedule = "stepflow.dev/schedule"

// AnnotationScheduledAt is the scheduled time (RFC 3339) a schedule's run
// was created for.
const AnnotationScheduledAt = "stepflow.dev/scheduled-at"

// Reasons of a schedule's Ready condition and events.
const (
	ReasonScheduled        = "Scheduled"
	ReasonSuspended        = "Suspended"
	ReasonInvalidSchedule  = "InvalidSchedule"
	ReasonRunCreated       = "RunCreated"
	ReasonRunAlreadyActive = "RunAlreadyActive"
	ReasonRunReplaced      = "RunReplaced"
	ReasonTooManyMissed    = "TooManyMissedTimes"
	ReasonRunNameTaken     = "RunNameTaken"
)

// errRunNameTaken: the name of a scheduled time's run is another's.
var errRunNameTaken = errors.New("the run's name is taken by a run the schedule does not own")

var scheduleKind = v1alpha1.GroupVersion.WithKind("WorkflowSchedule")

// ScheduleReconciler creates the runs of WorkflowSchedules. A reconcile
// reads the schedule and its runs from the cache, decides with dueTimes
// which scheduled time, if any, to run now, applies the concurrency
// policy, creates the run (named by the time, so it is created once),
// writes the status in one patch and asks to be called again exactly at
// the next scheduled time. It is woken also when one of its runs is
// created, finishes or is deleted.
type ScheduleReconciler struct {
	Client client.Client
	// Runs terminates the active runs of a Replace schedule, the way the
	// CLI and the REST API terminate a run.
	Runs     runop.Runs
	Recorder record.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (r *ScheduleReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// scheduleRuns lists the runs the schedule owns, from the cache.
func scheduleRuns(ctx context.Context, c client.Reader, s *v1alpha1.WorkflowSchedule) ([]v1alpha1.WorkflowRun, error) {
	var list v1alpha1.WorkflowRunList
	if err := c.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{LabelSchedule: app.LabelValue(s.Name)}); err != nil {
		return nil, fmt.Errorf("listing the runs of workflowschedule %s/%s: %w", s.Namespace, s.Name, err)
	}
	runs := list.Items[:0]
	for _, run := range list.Items {
		if metav1.IsControlledBy(&run, s) {
			runs = append(runs, run)
		}
	}
	return runs, nil
}

// Reconcile implements reconcile.Reconciler.
func (r *ScheduleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s v1alpha1.WorkflowSchedule
	if err := r.Client.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := r.now()
	before := s.DeepCopy()
	runs, err := scheduleRuns(ctx, r.Client, &s)
	if err != nil {
		return ctrl.Result{}, err
	}
	var active []v1alpha1.WorkflowRun
	for _, run := range runs {
		if !run.Status.Finished {
			active = append(active, run)
		} else if succeeded(&run) && (s.Status.LastSuccessfulTime == nil || s.Status.LastSuccessfulTime.Before(&run.Status.EndTime)) {
			t := run.Status.EndTime
			s.Status.LastSuccessfulTime = &t
		}
	}
	s.Status.Active = activeRefs(active)
	res, err := r.schedule(ctx, &s, active, now)
	if !equality.Semantic.DeepEqual(before.Status, s.Status) {
		if perr := r.Client.Status().Patch(ctx, &s, client.MergeFrom(before)); perr != nil && !apierrors.IsNotFound(perr) {
			return ctrl.Result{}, errors.Join(err, fmt.Errorf("writing the status of workflowschedule %s: %w", req.NamespacedName, perr))
		}
	}
	return res, err
}

// schedule does what is due at now: it sets the Ready condition, creates
// the run of the most recent time owed (terminating the active runs first
// under Replace, skipping under Forbid while one is active) and returns
// when to look again. It updates status.active for the runs it
// terminates and creates.
func (r *ScheduleReconciler) schedule(ctx context.Context, s *v1alpha1.WorkflowSchedule, active []v1alpha1.WorkflowRun, now time.Time) (ctrl.Result, error) {
	ready := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status,
			Reason: reason, Message: msg, ObservedGeneration: s.Generation})
	}
	sched, loc, err := parseSchedule(s.Spec)
	if err != nil {
		ready(metav1.ConditionFalse, ReasonInvalidSchedule, err.Error())
		// A spec change wakes the schedule; nothing else can fix it.
		return ctrl.Result{}, nil
	}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if s.Spec.Suspend {
		ready(metav1.ConditionTrue, ReasonSuspended, "suspended: no new runs")
		return ctrl.Result{}, nil
	}
	earliest := s.CreationTimestamp.Time
	if s.Status.LastScheduleTime != nil {
		earliest = s.Status.LastScheduleTime.Time
	}
	times := dueTimes(sched, loc, earliest, now, s.Spec.StartingDeadlineSeconds)
	res := ctrl.Result{}
	if !times.Next.IsZero() {
		res.RequeueAfter = times.Next.Sub(now)
		ready(metav1.ConditionTrue, ReasonScheduled, "next run at "+times.Next.Format(time.RFC3339))
	} else {
		ready(metav1.ConditionTrue, ReasonScheduled, "the schedule has no time in the next five years")
	}
	if times.Due.IsZero() {
		return res, nil
	}
	if times.Missed > maxMissed {
		r.event(s, corev1.EventTypeWarning, ReasonTooManyMissed, fmt.Sprintf(
			"more than %d scheduled times were missed; starting only the most recent, %s. Set or lower spec.startingDeadlineSeconds, or check the clock",
			maxMissed, times.Due.Format(time.RFC3339)))
	}
	name := scheduledRunName(s.Name, times.Due)
	var others []v1alpha1.WorkflowRun
	for _, run := range active {
		if run.Name != name {
			others = append(others, run)
		}
	}
	if len(others) < len(active) {
		// Created before a crash or a lost status write: it is done.
		s.Status.LastScheduleTime = &metav1.Time{Time: times.Due}
		return res, nil
	}
	switch s.Spec.ConcurrencyPolicy {
	case v1alpha1.ConcurrencyForbid:
		if len(active) > 0 {
			// The time stays owed, as a CronJob's: it runs when the
			// active run finishes, if still within the starting deadline.
			r.event(s, corev1.EventTypeNormal, ReasonRunAlreadyActive, fmt.Sprintf(
				"not starting the run of %s: run %s is still active and the concurrency policy is Forbid",
				times.Due.Format(time.RFC3339), active[0].Name))
			return res, nil
		}
	case v1alpha1.ConcurrencyReplace:
		for _, run := range active {
			if err := r.terminate(ctx, s, &run, now); err != nil {
				return ctrl.Result{}, err
			}
			r.event(s, corev1.EventTypeNormal, ReasonRunReplaced, fmt.Sprintf(
				"terminated run %s to start the run of %s (concurrency policy Replace)", run.Name, times.Due.Format(time.RFC3339)))
		}
		active = nil
	}
	run, err := r.create(ctx, s, name, times.Due)
	if errors.Is(err, errRunNameTaken) {
		// Retrying cannot help: the time is skipped, as a missed one.
		r.event(s, corev1.EventTypeWarning, ReasonRunNameTaken, fmt.Sprintf(
			"not starting the run of %s: a run named %s exists that this schedule does not own", times.Due.Format(time.RFC3339), name))
		s.Status.LastScheduleTime = &metav1.Time{Time: times.Due}
		return res, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if run != nil {
		r.event(s, corev1.EventTypeNormal, ReasonRunCreated, fmt.Sprintf("created run %s for %s", name, times.Due.Format(time.RFC3339)))
		if !run.Status.Finished {
			active = append(active, *run)
		}
	}
	s.Status.LastScheduleTime = &metav1.Time{Time: times.Due}
	s.Status.Active = activeRefs(active)
	return res, nil
}

// create creates the run of the scheduled time at, owned by the schedule.
// A run of that name that exists already is not created again (nil), or,
// when the schedule does not own it, errRunNameTaken.
func (r *ScheduleReconciler) create(ctx context.Context, s *v1alpha1.WorkflowSchedule, name string, at time.Time) (*v1alpha1.WorkflowRun, error) {
	run := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: s.Namespace,
			Labels:          map[string]string{LabelSchedule: app.LabelValue(s.Name)},
			Annotations:     map[string]string{AnnotationScheduledAt: at.UTC().Format(time.RFC3339)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, scheduleKind)},
		},
		Spec: v1alpha1.WorkflowRunSpec{
			WorkflowRef:        s.Spec.WorkflowRef,
			Context:            s.Spec.Context.DeepCopy(),
			ServiceAccountName: s.Spec.ServiceAccountName,
		},
	}
	err := r.Client.Create(ctx, run)
	if apierrors.IsAlreadyExists(err) {
		var other v1alpha1.WorkflowRun
		if gerr := r.Client.Get(ctx, client.ObjectKeyFromObject(run), &other); gerr == nil && !metav1.IsControlledBy(&other, s) {
			return nil, errRunNameTaken
		}
		// Ours, created before a crash (the cache may not have it yet).
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("workflowschedule %s/%s: creating run %s for %s: %w", s.Namespace, s.Name, name, at.Format(time.RFC3339), err)
	}
	log.FromContext(ctx).Info("created scheduled run", "run", name, "scheduled", at)
	return run, nil
}

// terminate stops an active run of a Replace schedule through pkg/runop,
// as `stepflow terminate` does, recording the schedule as who did it. A
// run that finished or went meanwhile is left alone.
func (r *ScheduleReconciler) terminate(ctx context.Context, s *v1alpha1.WorkflowSchedule, run *v1alpha1.WorkflowRun, now time.Time) error {
	who := fmt.Sprintf("stepflow controller: workflowschedule %s, concurrencyPolicy Replace", s.Name)
	_, err := r.Runs.Update(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Name},
		runop.Options{Verb: "terminate", Actor: who, Now: r.Now}, func(ch *runop.Change) error {
			return engine.Terminate(ch.Status, "", now)
		})
	if err == nil || apierrors.IsNotFound(err) || errors.Is(err, engine.ErrFinished) {
		return nil
	}
	return fmt.Errorf("terminating run %s/%s of its schedule (concurrency policy Replace): %w", run.Namespace, run.Name, err)
}

func (r *ScheduleReconciler) event(s *v1alpha1.WorkflowSchedule, typ, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Event(s, typ, reason, msg)
	}
}

// activeRefs are references to the runs, in name order.
func activeRefs(runs []v1alpha1.WorkflowRun) []corev1.ObjectReference {
	var refs []corev1.ObjectReference
	for _, run := range runs {
		refs = append(refs, corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "WorkflowRun",
			Namespace: run.Namespace, Name: run.Name, UID: run.UID})
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name < refs[j].Name })
	return refs
}

// succeeded reports whether a finished run counts as successful for
// history and LastSuccessfulTime: succeeded or skipped.
func succeeded(run *v1alpha1.WorkflowRun) bool {
	return run.Status.Phase == v1alpha1.WorkflowRunSucceeded || run.Status.Phase == v1alpha1.WorkflowRunSkipped
}

// scheduleRunEvents passes the events of a schedule's runs that change
// what the schedule shows or may do: a run created, finished or deleted.
func scheduleRunEvents() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*v1alpha1.WorkflowRun)
			n, ok2 := e.ObjectNew.(*v1alpha1.WorkflowRun)
			return ok1 && ok2 && o.Status.Finished != n.Status.Finished
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// setup registers the reconciler: it watches WorkflowSchedules and the
// runs they own.
func (r *ScheduleReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.WorkflowSchedule{}).
		Owns(&v1alpha1.WorkflowRun{}, builder.WithPredicates(scheduleRunEvents())).
		Complete(r)
}

// setupSchedulesAndCleanup builds and registers the schedule and cleanup
// reconcilers; Setup calls it.
func (c *Controller) setupSchedulesAndCleanup(mgr ctrl.Manager, o Options) error {
	recorder := mgr.GetEventRecorderFor("stepflow")
	c.Schedules = &ScheduleReconciler{Client: mgr.GetClient(), Recorder: recorder, Now: o.Now,
		Runs: runop.Runs{Reader: mgr.GetAPIReader(), Client: mgr.GetClient()}}
	if err := c.Schedules.setup(mgr); err != nil {
		return err
	}
	c.Cleanup = &CleanupReconciler{Client: mgr.GetClient(), Config: o.Config.Cleanup, Recorder: recorder, Now: o.Now}
	return c.Cleanup.setup(mgr)
}
