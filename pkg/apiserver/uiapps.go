package apiserver

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// RunRef names a run.
type RunRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Deploys is GET /ui/api/apps/{namespace}/{appId}/deploys: an app's
// gray-release history.
type Deploys struct {
	// Items are the app's DEPLOY runs in the namespace, newest first
	// (app.Newer: runs still going, then by end time).
	Items []RunSummary `json:"items"`
	// RollbackTarget is the run a rollback returns to now: the newest
	// succeeded DEPLOY run (app.RollbackTargets) of Scope; null when
	// there is none.
	RollbackTarget *RunRef `json:"rollbackTarget"`
	// Scope is the scope (app.LabelScope) the target is chosen in: the
	// one asked for (?scope=, which also keeps Items to it), else the
	// newest DEPLOY run's; "" when there are no runs.
	Scope string `json:"scope"`
}

// uiDeploys is GET /ui/api/apps/{namespace}/{appId}/deploys, once the
// caller may list workflowruns in the namespace.
func (s *server) uiDeploys(r *http.Request, u User) (any, error) {
	ns, id := chi.URLParam(r, "namespace"), chi.URLParam(r, "appId")
	ctx := r.Context()
	if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "list", Namespace: ns}); err != nil {
		return nil, err
	}
	f := runFilter{namespace: ns, appID: app.LabelValue(id), rawAppID: id,
		category: app.LabelValue(app.CategoryDeploy), selector: labels.Everything()}
	var list v1alpha1.WorkflowRunList
	if err := s.o.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{indexAppID: f.appID}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the runs of app %s in namespace %s: %w", id, ns, err)
	}
	var runs []*v1alpha1.WorkflowRun
	for i := range list.Items {
		if f.matches(&list.Items[i]) {
			runs = append(runs, &list.Items[i])
		}
	}
	app.SortNewestFirst(runs)
	// A rollback returns to a run of its own scope: the one asked for, else
	// the newest run's, the one a rollback would be decided in.
	out := Deploys{Scope: r.URL.Query().Get("scope")}
	if out.Scope == "" && len(runs) > 0 {
		out.Scope = runs[0].Labels[app.LabelScope]
	}
	var same []*v1alpha1.WorkflowRun
	for _, run := range runs {
		if run.Labels[app.LabelScope] == out.Scope {
			same = append(same, run)
		}
	}
	if r.URL.Query().Has("scope") {
		runs = same
	}
	out.Items = make([]RunSummary, 0, len(runs))
	totals := s.stepTotals(ctx)
	for _, run := range runs {
		out.Items = append(out.Items, runSummary(run, totals(run), s.o.Now()))
	}
	if targets := app.RollbackTargets(same); len(targets) > 0 {
		out.RollbackTarget = &RunRef{Namespace: targets[0].Namespace, Name: targets[0].Name}
	}
	return out, nil
}
