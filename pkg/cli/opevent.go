package cli

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// operatedEventSource is the component the CLI's Events name, as the REST
// API server's name stepflow-server.
const operatedEventSource = "stepflow-cli"

// recordOperated leaves an Event on run saying who did verb, as the REST
// API does for its operations, so `kubectl describe` and `stepflow
// describe` show it beside the controller's. The run's annotations record
// the operation already (pkg/runop): a user who may change runs but not
// create Events is not refused the operation for it.
func recordOperated(ctx context.Context, c client.Client, run *v1alpha1.WorkflowRun, verb, actor string, now time.Time) error {
	if actor == "" {
		actor = "unknown user"
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: run.Namespace,
			Name:      fmt.Sprintf("%s.%x", run.Name, now.UnixNano()),
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "WorkflowRun",
			Namespace: run.Namespace, Name: run.Name, UID: run.UID, ResourceVersion: run.ResourceVersion,
		},
		Type:                corev1.EventTypeNormal,
		Reason:              "Operated",
		Message:             fmt.Sprintf("%s by %s through the stepflow CLI", verb, actor),
		Source:              corev1.EventSource{Component: operatedEventSource},
		ReportingController: operatedEventSource,
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
	}
	if err := c.Create(ctx, ev); err != nil && !apierrors.IsForbidden(err) {
		return fmt.Errorf("the %s was done, but recording its Event failed: %w", verb, err)
	}
	return nil
}
