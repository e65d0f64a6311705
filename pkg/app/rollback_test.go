package app

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// deployRun is a run of app shop, scope daily, in category, created at
// created and ended at end (seconds after t0; end < 0: not ended), with
// instance id id (0: none).
type deployRun struct {
	name, category string
	phase          v1alpha1.WorkflowRunPhase
	created, end   int
	id             int64
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func (d deployRun) run() *v1alpha1.WorkflowRun {
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: d.name,
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(d.created) * time.Second)),
		Labels:            map[string]string{LabelAppID: "shop", LabelScope: "daily", LabelCategory: d.category}}}
	if d.id > 0 {
		run.Labels[LabelInstanceID] = strconv.FormatInt(d.id, 10)
	}
	run.Status.Phase = d.phase
	if d.end >= 0 {
		run.Status.Finished = true
		run.Status.EndTime = metav1.NewTime(t0.Add(time.Duration(d.end) * time.Second))
	}
	return run
}

func TestRollbackOrder(t *testing.T) {
	const (
		ok      = v1alpha1.WorkflowRunSucceeded
		failed  = v1alpha1.WorkflowRunFailed
		running = v1alpha1.WorkflowRunExecuting
	)
	for _, tc := range []struct {
		name string
		runs []deployRun
		// newest is every run, newest first; targets the rollback targets,
		// newest first (the first is what a rollback returns to).
		newest, targets []string
	}{
		{"by end time, not creation or name",
			[]deployRun{{"a", "DEPLOY", ok, 0, 300, 0}, {"c", "DEPLOY", ok, 100, 200, 0}, {"b", "DEPLOY", ok, 200, 400, 0}},
			[]string{"b", "a", "c"}, []string{"b", "a", "c"}},
		{"only succeeded DEPLOY runs are targets",
			[]deployRun{{"v1", "DEPLOY", ok, 0, 10, 1}, {"v2", "DEPLOY", failed, 20, 30, 2}, {"back", "ROLLBACK", ok, 40, 50, 3}},
			[]string{"back", "v2", "v1"}, []string{"v1"}},
		{"a run still going is the newest, never a target",
			[]deployRun{{"v1", "DEPLOY", ok, 0, 10, 1}, {"v2", "DEPLOY", running, 20, -1, 2}, {"v0", "DEPLOY", ok, 5, 8, 0}},
			[]string{"v2", "v1", "v0"}, []string{"v1", "v0"}},
		{"runs going: the later created first",
			[]deployRun{{"z", "DEPLOY", running, 10, -1, 0}, {"a", "DEPLOY", running, 20, -1, 0}},
			[]string{"a", "z"}, nil},
		{"same end second: the higher instance id, whatever the names",
			[]deployRun{{"deploy-zzz", "DEPLOY", ok, 0, 60, 7}, {"deploy-aaa", "DEPLOY", ok, 1, 60, 8}},
			[]string{"deploy-aaa", "deploy-zzz"}, []string{"deploy-aaa", "deploy-zzz"}},
		{"same end second, no ids: the greater name",
			[]deployRun{{"a", "DEPLOY", ok, 0, 60, 0}, {"c", "DEPLOY", ok, 0, 60, 0}, {"b", "DEPLOY", ok, 0, 60, 0}},
			[]string{"c", "b", "a"}, []string{"c", "b", "a"}},
		{"none", nil, []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs []*v1alpha1.WorkflowRun
			for _, d := range tc.runs {
				runs = append(runs, d.run())
			}
			targets := RollbackTargets(runs)
			SortNewestFirst(runs)
			names := func(runs []*v1alpha1.WorkflowRun) []string {
				out := []string{}
				for _, r := range runs {
					out = append(out, r.Name)
				}
				return out
			}
			if d := cmp.Diff(tc.newest, names(runs)); d != "" {
				t.Errorf("newest first (-want +got):\n%s", d)
			}
			want := tc.targets
			if want == nil {
				want = []string{}
			}
			if d := cmp.Diff(want, names(targets)); d != "" {
				t.Errorf("rollback targets (-want +got):\n%s", d)
			}
		})
	}
}

func TestRollbackTargetNeedsAppAndScope(t *testing.T) {
	run := deployRun{"v1", "DEPLOY", v1alpha1.WorkflowRunSucceeded, 0, 10, 0}.run()
	if id, scope, ok := RollbackTarget(run); !ok || id != "shop" || scope != "daily" {
		t.Fatalf("RollbackTarget = %q, %q, %v; want shop, daily, true", id, scope, ok)
	}
	delete(run.Labels, LabelScope)
	if _, _, ok := RollbackTarget(run); ok {
		t.Error("a run without a scope label is a rollback target")
	}
}
