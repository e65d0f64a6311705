package appop

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// Family is the app ops.
type Family struct {
	own      client.Reader
	clusters kube.Clusters
	ids      func(context.Context) (int64, error)
}

// WithInstanceIDs makes relaunch give the run it creates an instance id
// from next when the run it replays has one (app.LabelInstanceID). next
// allocates with the controller's own rights (app.AllocateInstanceID
// from the system namespace's counter), not the step's identity. Without
// it replays have no id.
func (f *Family) WithInstanceIDs(next func(context.Context) (int64, error)) *Family {
	f.ids = next
	return f
}

// New returns the family. own reads the step's own run and its
// configuration ConfigMap (the controller's reader: it must see every
// run's namespace, and ConfigMaps without a label selector); clusters
// gives the client, acting as the step's identity, for every other
// request (cluster "").
func New(own client.Reader, clusters kube.Clusters) *Family {
	return &Family{own: own, clusters: clusters}
}

// Provider is the #provider of the ops' CUE schemas.
func (f *Family) Provider() string { return "app" }

// Ops maps each #do to its op.
func (f *Family) Ops() map[string]op.Op {
	return map[string]op.Op{
		"components": &componentsOp{f: f},
		"latest-run": &latestRunOp{f: f},
		"relaunch":   &relaunchOp{f: f},
	}
}

var _ op.Family = (*Family)(nil)

// ownRun reads the step's run, checking that it is the step's (its UID).
func (f *Family) ownRun(ctx context.Context, step op.Step) (*v1alpha1.WorkflowRun, error) {
	if f.own == nil {
		return nil, op.Permanentf("app ops: no reader for the step's own run is configured")
	}
	if step.RunName == "" || step.Namespace == "" {
		return nil, op.Permanentf("app ops need the step's run: this step has none")
	}
	var run v1alpha1.WorkflowRun
	err := f.own.Get(ctx, client.ObjectKey{Namespace: step.Namespace, Name: step.RunName}, &run)
	if apierrors.IsNotFound(err) {
		return nil, op.Permanentf("the step's workflowrun %s/%s does not exist", step.Namespace, step.RunName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the step's workflowrun %s/%s: %w", step.Namespace, step.RunName, err)
	}
	if string(run.UID) != step.RunUID {
		return nil, op.Permanentf("workflowrun %s/%s has uid %s, not the step's run's %s: it was deleted and created again", step.Namespace, step.RunName, run.UID, step.RunUID)
	}
	return &run, nil
}

// configuration reads the application configuration run was launched
// with through r. A run without one, or one that does not parse or match
// its hash, is a permanent error; a failed request is retryable (a
// ConfigMap may not exist yet while its run is being launched).
func configuration(ctx context.Context, r client.Reader, run *v1alpha1.WorkflowRun) (*app.Stored, error) {
	if _, inline := run.Annotations[app.AnnotationConfiguration]; !inline && run.Annotations[app.AnnotationConfigMap] == "" {
		return nil, op.Permanentf("workflowrun %s/%s was not launched from an application: it has neither annotation %s nor %s", run.Namespace, run.Name, app.AnnotationConfiguration, app.AnnotationConfigMap)
	}
	s, err := app.Configuration(ctx, r, run)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil, err
		}
		return nil, op.Permanent(err)
	}
	return s, nil
}

// localClient is the step identity's client of the local cluster.
func (f *Family) localClient(ctx context.Context, step op.Step) (client.Client, error) {
	if f.clusters == nil {
		return nil, op.Permanentf("app ops: no clusters are configured")
	}
	c, err := f.clusters.Cluster(ctx, step, "")
	if err != nil {
		if op.IsPermanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	return c, nil
}

// apiError keeps a denial permanent (pkg/tenancy marks it) and names what
// was being done.
func apiError(err error, format string, args ...any) error {
	err = fmt.Errorf(format+": %w", append(args, err)...)
	if op.IsPermanent(err) || apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
		return op.Permanent(err)
	}
	return err
}
