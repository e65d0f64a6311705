package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

// Instance is a run as SREWorks' workflow instance, with its field names
// and JSON types. Times are Unix milliseconds; gmtStart and gmtEnd are
// null until the run starts and ends.
type Instance struct {
	ID                   int64         `json:"id"`
	GmtCreate            int64         `json:"gmtCreate"`
	GmtModified          int64         `json:"gmtModified"`
	AppID                string        `json:"appId"`
	Category             string        `json:"category"`
	GmtStart             *int64        `json:"gmtStart"`
	GmtEnd               *int64        `json:"gmtEnd"`
	WorkflowStatus       string        `json:"workflowStatus"`
	WorkflowErrorMessage string        `json:"workflowErrorMessage"`
	WorkflowSHA256       string        `json:"workflowSha256"`
	WorkflowOptions      LaunchOptions `json:"workflowOptions"`
	WorkflowCreator      string        `json:"workflowCreator"`
	LockVersion          int64         `json:"lockVersion"`
	// WorkflowConfiguration (the YAML launched) and WorkflowContext
	// ({} when the run has none) are left out of lists.
	WorkflowConfiguration *string        `json:"workflowConfiguration,omitzero"`
	WorkflowContext       map[string]any `json:"workflowContext,omitzero"`
	// Namespace and Name are the run's (Stepflow extension): the
	// "namespace/name" form of the instance id.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// LaunchOptions are an instance's launch options.
type LaunchOptions struct {
	Creator  string `json:"creator"`
	Category string `json:"category"`
}

// summary is run as an instance without its configuration and context.
func summary(run *v1alpha1.WorkflowRun) Instance {
	id, _ := app.InstanceID(run)
	creator := run.Annotations[app.AnnotationCreator]
	category := run.Labels[app.LabelCategory]
	in := Instance{
		ID:              id,
		GmtCreate:       run.CreationTimestamp.UnixMilli(),
		GmtModified:     modified(run),
		AppID:           run.Annotations[app.AnnotationRawAppID],
		Category:        category,
		GmtStart:        millis(run.Status.StartTime),
		GmtEnd:          millis(run.Status.EndTime),
		WorkflowStatus:  app.InstanceState(run),
		WorkflowSHA256:  run.Annotations[app.AnnotationSHA256],
		WorkflowOptions: LaunchOptions{Creator: creator, Category: category},
		WorkflowCreator: creator,
		LockVersion:     lockVersion(run),
		Namespace:       run.Namespace,
		Name:            run.Name,
	}
	if in.AppID == "" {
		in.AppID = run.Labels[app.LabelAppID]
	}
	switch in.WorkflowStatus {
	case "FAILURE", "EXCEPTION", "TERMINATED":
		in.WorkflowErrorMessage = run.Status.Message
	}
	return in
}

// detail is run as an instance with the configuration it was launched
// with and its context.
func detail(ctx context.Context, c client.Client, run *v1alpha1.WorkflowRun) (Instance, error) {
	in := summary(run)
	stored, err := app.Configuration(ctx, c, run)
	if err != nil {
		return Instance{}, err
	}
	doc := string(stored.Raw)
	in.WorkflowConfiguration = &doc
	if in.WorkflowContext, err = runContext(ctx, c, run); err != nil {
		return Instance{}, err
	}
	return in, nil
}

// runContext is run's context as its steps see it: spec.context, and
// over it the variables its journal holds.
func runContext(ctx context.Context, c client.Client, run *v1alpha1.WorkflowRun) (map[string]any, error) {
	vars := map[string]any{}
	if run.Spec.Context != nil && len(run.Spec.Context.Raw) > 0 {
		if err := json.Unmarshal(run.Spec.Context.Raw, &vars); err != nil {
			return nil, fmt.Errorf("workflowrun %s/%s: spec.context: %w", run.Namespace, run.Name, err)
		}
	}
	// Variables set while the run runs (stepflow context set, the
	// context endpoint, #DoVar) live in its journal and win over
	// spec.context, as the steps see them; those set before its last
	// restart are gone.
	j, err := journal.Open(ctx, kubestore.New(c, run, nil).WithLive(c), journal.Limits{})
	if err != nil {
		return nil, fmt.Errorf("workflowrun %s/%s: its context variables: %w", run.Namespace, run.Name, err)
	}
	j.Restarted(run.Status.RestartCount)
	for k, v := range j.Vars() {
		vars[k] = v
	}
	return vars, nil
}

// lockVersion is the run's resourceVersion as a number (the API server's
// are etcd revisions), so any change to the run changes it.
func lockVersion(run *v1alpha1.WorkflowRun) int64 {
	v, err := strconv.ParseInt(run.ResourceVersion, 10, 64)
	if err != nil {
		return run.Generation
	}
	return v
}

// modified is the latest time the run records: its creation, start, end,
// condition changes and step starts and ends.
func modified(run *v1alpha1.WorkflowRun) int64 {
	latest := run.CreationTimestamp.Time
	see := func(t metav1.Time) {
		if t.After(latest) {
			latest = t.Time
		}
	}
	see(run.Status.StartTime)
	see(run.Status.EndTime)
	for _, c := range run.Status.Conditions {
		see(c.LastTransitionTime)
	}
	for _, s := range run.Status.Steps {
		see(s.FirstExecuteTime)
		see(s.LastExecuteTime)
	}
	return latest.UnixMilli()
}

func millis(t metav1.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}
