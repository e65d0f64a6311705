package appop

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// latestRunParams is app.#LatestRun's $params, and op.#LatestRun's own
// fields.
type latestRunParams struct {
	Category string `json:"category"`
	Phase    string `json:"phase"`
}

type latestRunOp struct{ f *Family }

func (*latestRunOp) NewParams() any     { return &latestRunParams{} }
func (*latestRunOp) Class(any) op.Class { return op.Idempotent }

// Run lists, as the step's identity, the runs of the step's namespace with
// the app-id and scope labels of the step's run and the category asked
// for, and returns the newest in the phase asked for (app.Newer: by status
// end time, then instance id, then name), other than the step's own run.
func (o *latestRunOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[latestRunParams](call)
	if err != nil {
		return op.Result{}, err
	}
	if p.Category == "" || p.Phase == "" {
		return op.Result{}, op.Permanentf("category and phase are required (given %q and %q)", p.Category, p.Phase)
	}
	run, err := o.f.ownRun(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	appID, scope := run.Labels[app.LabelAppID], run.Labels[app.LabelScope]
	if appID == "" || scope == "" {
		return op.Result{}, op.Permanentf("workflowrun %s/%s was not launched from an application: it has no %s and %s labels", run.Namespace, run.Name, app.LabelAppID, app.LabelScope)
	}
	c, err := o.f.localClient(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	var list v1alpha1.WorkflowRunList
	if err := c.List(ctx, &list, client.InNamespace(run.Namespace), client.MatchingLabels{
		app.LabelAppID: appID, app.LabelScope: scope, app.LabelCategory: p.Category,
	}); err != nil {
		return op.Result{}, apiError(err, "listing workflowruns of app %s, scope %s, category %s in namespace %s", appID, scope, p.Category, run.Namespace)
	}
	var found []*v1alpha1.WorkflowRun
	for i := range list.Items {
		r := &list.Items[i]
		if r.UID == run.UID || r.Name == run.Name || string(r.Status.Phase) != p.Phase {
			continue
		}
		found = append(found, r)
	}
	if len(found) == 0 {
		return op.Result{Returns: map[string]any{"found": false}}, nil
	}
	app.SortNewestFirst(found)
	newest := found[0]
	end := ""
	if !newest.Status.EndTime.IsZero() {
		end = newest.Status.EndTime.UTC().Format(time.RFC3339)
	}
	return op.Result{Returns: map[string]any{"found": true, "name": newest.Name, "endTime": end}}, nil
}

// relaunchParams is app.#Relaunch's $params, and op.#Relaunch's own
// fields.
type relaunchParams struct {
	Name     string         `json:"name"`
	From     string         `json:"from"`
	Category string         `json:"category"`
	Context  map[string]any `json:"context"`
}

type relaunchOp struct{ f *Family }

func (*relaunchOp) NewParams() any     { return &relaunchParams{} }
func (*relaunchOp) Class(any) op.Class { return op.Idempotent }

// Run creates run Name replaying run From, as the step's identity, unless
// a run of that name exists: then it is success with created false when
// this step launched it (AnnotationLaunchedBy), a permanent error when
// not.
func (o *relaunchOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[relaunchParams](call)
	if err != nil {
		return op.Result{}, err
	}
	if p.Name == "" || p.From == "" || p.Category == "" {
		return op.Result{}, op.Permanentf("name, from and category are required (given %q, %q and %q)", p.Name, p.From, p.Category)
	}
	parent, err := o.f.ownRun(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	if p.From == parent.Name {
		return op.Result{}, op.Permanentf("relaunch of workflowrun %s/%s from itself: name another run", parent.Namespace, p.From)
	}
	c, err := o.f.localClient(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	launchedBy := app.LaunchedBy(string(parent.UID), call.Step.StepName)
	// A run of that name may already be there: found first, the source
	// need not still be readable for a step evaluated again.
	var existing v1alpha1.WorkflowRun
	switch err := c.Get(ctx, client.ObjectKey{Namespace: parent.Namespace, Name: p.Name}, &existing); {
	case err == nil:
		if err := mine(&existing, launchedBy); err != nil {
			return op.Result{}, err
		}
		if complete, err := hasConfiguration(ctx, c, &existing); err != nil || complete {
			return op.Result{Returns: map[string]any{"name": p.Name, "created": false}}, err
		}
		// Its ConfigMap is missing: the launch below creates it.
	case !apierrors.IsNotFound(err):
		return op.Result{}, apiError(err, "reading workflowrun %s/%s", parent.Namespace, p.Name)
	}

	var src v1alpha1.WorkflowRun
	if err := c.Get(ctx, client.ObjectKey{Namespace: parent.Namespace, Name: p.From}, &src); err != nil {
		if apierrors.IsNotFound(err) {
			return op.Result{}, op.Permanentf("workflowrun %s/%s to relaunch does not exist", parent.Namespace, p.From)
		}
		return op.Result{}, apiError(err, "reading workflowrun %s/%s to relaunch", parent.Namespace, p.From)
	}
	stored, err := configuration(ctx, c, &src)
	if err != nil {
		return op.Result{}, err
	}
	var id int64
	if _, ok := app.InstanceID(&src); ok && o.f.ids != nil {
		if id, err = o.f.ids(ctx); err != nil {
			return op.Result{}, apiError(err, "relaunching workflowrun %s/%s as %s", parent.Namespace, p.From, p.Name)
		}
	}
	l, err := app.Replay(app.ReplayRequest{
		Source: &src, Stored: stored, Name: p.Name, Category: p.Category, Context: p.Context,
		Parent: parent, Step: call.Step.StepName, InstanceID: id,
	})
	if err != nil {
		return op.Result{}, op.Permanent(err)
	}
	got, created, err := l.CreateIfAbsent(ctx, c)
	if err != nil {
		return op.Result{}, apiError(err, "relaunching workflowrun %s/%s as %s", parent.Namespace, p.From, p.Name)
	}
	if !created {
		if err := mine(got, launchedBy); err != nil {
			return op.Result{}, err
		}
	}
	return op.Result{Returns: map[string]any{"name": p.Name, "created": created}}, nil
}

// mine checks that run was launched by the step launchedBy names.
func mine(run *v1alpha1.WorkflowRun, launchedBy string) error {
	if got := run.Annotations[app.AnnotationLaunchedBy]; got != launchedBy {
		return op.Permanentf("workflowrun %s/%s exists and was not launched by this step (annotation %s is %q, want %q): choose another name", run.Namespace, run.Name, app.AnnotationLaunchedBy, got, launchedBy)
	}
	return nil
}

// hasConfiguration says whether run's configuration is in place: inline,
// or in the ConfigMap it names.
func hasConfiguration(ctx context.Context, c client.Reader, run *v1alpha1.WorkflowRun) (bool, error) {
	name := run.Annotations[app.AnnotationConfigMap]
	if name == "" {
		return true, nil
	}
	var cm corev1.ConfigMap
	err := c.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, &cm)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, apiError(err, "reading configmap %s/%s of workflowrun %s", run.Namespace, name, run.Name)
	}
	return true, nil
}
