package appop

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// The package's tests share one API server with the Stepflow CRDs.
var env *testenv.Env

func TestMain(m *testing.M) {
	s, err := api.NewScheme()
	if err != nil {
		panic(err)
	}
	var stop func()
	env, stop = testenv.StartMain(testenv.WithCRDs(), testenv.WithScheme(s))
	code := m.Run()
	stop()
	os.Exit(code)
}

// newNamespace creates a fresh namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "appop-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// identities is a kube.Clusters that serves the local cluster with the
// administrator's client and records which step asked for which cluster.
type identities struct {
	mu    sync.Mutex
	asked []string // "STEP@CLUSTER"
}

func (r *identities) Cluster(_ context.Context, step op.Step, name string) (client.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, step.StepName+"@"+name)
	if name != "" {
		return nil, op.Permanentf("unknown cluster %q", name)
	}
	return env.Client, nil
}

func (r *identities) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

// launch launches src as app id testapp in ns with pkg/app, as stepflow
// launch does, and returns the run as the API server has it.
func launch(t *testing.T, ns, name, category string, src []byte) *v1alpha1.WorkflowRun {
	t.Helper()
	l, err := app.Run(context.Background(), env.Client, app.Request{
		Configuration: src, AppID: "testapp", Category: category, Namespace: ns, Name: name, Creator: "alice",
	})
	if err != nil {
		t.Fatal(err)
	}
	return l.Run
}

// finish sets the run's status phase and end time through the status
// subresource, as the controller would.
func finish(t *testing.T, run *v1alpha1.WorkflowRun, phase v1alpha1.WorkflowRunPhase, end time.Time) {
	t.Helper()
	run.Status.Phase = phase
	run.Status.Finished = true
	run.Status.EndTime = metav1.NewTime(end)
	if err := env.Client.Status().Update(context.Background(), run); err != nil {
		t.Fatal(err)
	}
}

// call runs op do of a family as step "rollback" of run, through op.Direct
// (so errors have the one shape).
func call(f *Family, do string, run *v1alpha1.WorkflowRun, params any) (op.Result, error) {
	o := f.Ops()[do]
	return op.Direct.Run(context.Background(), &op.Call{
		Name: op.Name{Provider: "app", Do: do}, Path: "test." + do, Op: o, Params: params, Class: o.Class(params),
		Step: stepOf(run),
	})
}

func stepOf(run *v1alpha1.WorkflowRun) op.Step {
	return op.Step{RunUID: string(run.UID), RunName: run.Name, Namespace: run.Namespace, StepName: "rollback", StepID: run.Name + "-rollback-1"}
}

// mustCall is call's $returns, failing t on error.
func mustCall(t *testing.T, f *Family, do string, run *v1alpha1.WorkflowRun, params any) map[string]any {
	t.Helper()
	res, err := call(f, do, run, params)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := res.Returns.(map[string]any)
	if !ok {
		t.Fatalf("returns are %T", res.Returns)
	}
	return m
}
