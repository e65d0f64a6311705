package app

import (
	"sort"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// CategoryDeploy is the category (LabelCategory) of the runs that deploy
// an application: its succeeded ones are what a rollback returns to.
const CategoryDeploy = "DEPLOY"

// The rollback rule, shared by the latest-run op (pkg/op/appop), the
// cleanup that never deletes rollback targets (pkg/controller) and the
// UI's gray-release view (pkg/apiserver): which of an application's runs
// is the newest, and which of them a rollback returns to.

// Newer reports whether run a is newer than run b: a run that has not
// ended (no status.endTime, not finished) is newer than one that has, and
// of two that have not, the later created; of two that ended, the later
// status.endTime. End and creation times have whole seconds: of two in the
// same second, the higher instance id (handed out in launch order), then
// the greater name, is the newer.
func Newer(a, b *v1alpha1.WorkflowRun) bool {
	aEnded, bEnded := ended(a), ended(b)
	switch {
	case aEnded != bEnded:
		return !aEnded
	case !aEnded && !a.CreationTimestamp.Equal(&b.CreationTimestamp):
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	case aEnded && !a.Status.EndTime.Equal(&b.Status.EndTime):
		return a.Status.EndTime.After(b.Status.EndTime.Time)
	}
	ai, aok := InstanceID(a)
	bi, bok := InstanceID(b)
	if aok && bok && ai != bi {
		return ai > bi
	}
	return a.Name > b.Name
}

func ended(run *v1alpha1.WorkflowRun) bool {
	return run.Status.Finished || !run.Status.EndTime.IsZero()
}

// SortNewestFirst orders runs by Newer, the newest first.
func SortNewestFirst(runs []*v1alpha1.WorkflowRun) {
	sort.SliceStable(runs, func(i, j int) bool { return Newer(runs[i], runs[j]) })
}

// RollbackTarget reports whether run is one a rollback may return to: a
// finished, succeeded DEPLOY run of an application (its app-id and scope
// labels set), and those labels.
func RollbackTarget(run *v1alpha1.WorkflowRun) (appID, scope string, ok bool) {
	appID, scope = run.Labels[LabelAppID], run.Labels[LabelScope]
	ok = appID != "" && scope != "" && run.Labels[LabelCategory] == CategoryDeploy &&
		run.Status.Finished && run.Status.Phase == v1alpha1.WorkflowRunSucceeded
	return appID, scope, ok
}

// RollbackTargets are the runs among runs that a rollback may return to
// (RollbackTarget), newest first: the first is the one a rollback of their
// application and scope returns to now. runs are of one application and
// scope.
func RollbackTargets(runs []*v1alpha1.WorkflowRun) []*v1alpha1.WorkflowRun {
	var out []*v1alpha1.WorkflowRun
	for _, run := range runs {
		if _, _, ok := RollbackTarget(run); ok {
			out = append(out, run)
		}
	}
	SortNewestFirst(out)
	return out
}
