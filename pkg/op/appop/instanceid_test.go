package appop

import (
	"context"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// A relaunch of a run with an instance id gives the new run the next id of
// the counter, once: evaluated again, it allocates no other. A run without
// an id is replayed without one.
func TestRelaunchInstanceID(t *testing.T) {
	ctx := context.Background()
	ns, system := newNamespace(t), newNamespace(t)
	var allocations atomic.Int32
	f := New(env.Client, &identities{}).WithInstanceIDs(func(ctx context.Context) (int64, error) {
		allocations.Add(1)
		return app.AllocateInstanceID(ctx, env.Client, system)
	})
	src, err := app.Run(ctx, env.Client, app.Request{Configuration: grayRelease(t), AppID: "testapp", Category: "DEPLOY",
		Namespace: ns, Name: "v2", InstanceCounterNamespace: system})
	if err != nil {
		t.Fatal(err)
	}
	srcID, ok := app.InstanceID(src.Run)
	if !ok {
		t.Fatalf("the source run has no instance id: labels %v", src.Run.Labels)
	}
	launch(t, ns, "v1", "DEPLOY", grayRelease(t)) // no id
	parent := launch(t, ns, "v3", "DEPLOY", grayRelease(t))

	params := &relaunchParams{Name: "v3-rollback-1", From: "v2", Category: "ROLLBACK"}
	mustCall(t, f, "relaunch", parent, params)
	mustCall(t, f, "relaunch", parent, params)
	var rb v1alpha1.WorkflowRun
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "v3-rollback-1"}, &rb); err != nil {
		t.Fatal(err)
	}
	if id, ok := app.InstanceID(&rb); !ok || id != srcID+1 {
		t.Errorf("the rollback run's id is %q, want %d", rb.Labels[app.LabelInstanceID], srcID+1)
	}
	if n := allocations.Load(); n != 1 {
		t.Errorf("%d ids allocated for one relaunch evaluated twice, want 1", n)
	}

	mustCall(t, f, "relaunch", parent, &relaunchParams{Name: "v3-rollback-2", From: "v1", Category: "ROLLBACK"})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "v3-rollback-2"}, &rb); err != nil {
		t.Fatal(err)
	}
	if v, ok := rb.Labels[app.LabelInstanceID]; ok {
		t.Errorf("the replay of a run without an id has id %q", v)
	}
	if n := allocations.Load(); n != 1 {
		t.Errorf("%d ids allocated, want still 1", n)
	}
}
