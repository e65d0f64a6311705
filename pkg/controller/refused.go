package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// ReasonWriteRefused is the reason of a run failed because the API server
// refused to store its status or its journal for their size.
const ReasonWriteRefused = "WriteRefused"

// refusedForSize reports whether err is the API server refusing a write
// for its size. Writing the same thing again would be refused again, so
// such a write ends the run instead of being retried. The three shapes:
// the request body over the server's limit (413 "Request entity too
// large"), the stored object over etcd's (a 500 "etcdserver: request is
// too large"), and an object over its kind's own bound (a 422 whose cause
// is FieldValueTooLong outside the metadata, e.g. a ConfigMap over 1 MiB).
func refusedForSize(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsRequestEntityTooLargeError(err) || strings.Contains(err.Error(), "request is too large") {
		return true
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Code != http.StatusUnprocessableEntity || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Type == metav1.CauseType(field.ErrorTypeTooLong) && !strings.HasPrefix(c.Field, "metadata") {
			return true
		}
	}
	return false
}

// failRefused ends run, as it was before the tick, as failed because the
// API server refused the write named by what (of size bytes). The patch
// carries only the phase, the message and the conditions, so it fits
// where the refused write did not; if even that is refused, the step
// statuses are dropped from it. A Warning event says the same.
func (r *RunReconciler) failRefused(ctx context.Context, run *v1alpha1.WorkflowRun, what string, size int, cause error) (ctrl.Result, error) {
	name := client.ObjectKeyFromObject(run)
	detail := cause.Error()
	if len(detail) > 300 {
		detail = detail[:300] + "…"
	}
	msg := fmt.Sprintf("the API server refused to store the %s (%d bytes) for its size; the run cannot go on: %s", what, size, detail)
	before := run.DeepCopy()
	now := metav1.NewTime(r.now())
	run.Status.Phase, run.Status.Finished = v1alpha1.WorkflowRunFailed, true
	run.Status.Message, run.Status.EndTime = msg, now
	for _, c := range []struct {
		typ string
		ok  metav1.ConditionStatus
	}{{v1alpha1.ConditionFailed, metav1.ConditionTrue}, {v1alpha1.ConditionSucceeded, metav1.ConditionFalse}, {v1alpha1.ConditionSuspended, metav1.ConditionFalse}} {
		meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{Type: c.typ, Status: c.ok, Reason: ReasonWriteRefused,
			Message: msg, ObservedGeneration: run.Generation, LastTransitionTime: now})
	}
	// A run refused at its first write has no Ready yet: whether its spec
	// could run is not known.
	if meta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionReady) == nil {
		meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionUnknown,
			Reason: ReasonWriteRefused, Message: msg, ObservedGeneration: run.Generation, LastTransitionTime: now})
	}
	if !run.Status.StartTime.IsZero() {
		run.Status.Duration = &metav1.Duration{Duration: max(now.Sub(run.Status.StartTime.Time), 0)}
	}
	err := r.Client.Status().Patch(ctx, run, client.MergeFrom(before))
	if refusedForSize(err) {
		run.Status.Steps = nil
		err = r.Client.Status().Patch(ctx, run, client.MergeFrom(before))
	}
	if apierrors.IsNotFound(err) {
		r.forget(name, run.UID)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("marking %s failed after its %s was refused: %w", name, what, err)
	}
	r.own.set(name, run.UID, run.ResourceVersion)
	if r.Recorder != nil {
		r.Recorder.Event(run, corev1.EventTypeWarning, ReasonWriteRefused, msg)
	}
	r.Metrics.observe(&before.Status, &run.Status)
	return ctrl.Result{}, nil
}
