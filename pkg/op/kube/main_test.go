package kube

import (
	"context"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// The package's tests share one API server. The ops under test use their own
// client whose transport counts requests, so a test can check how many
// requests an op makes; tests that count must not run in parallel.
var (
	env      *testenv.Env
	opClient client.Client
	requests atomic.Int64
)

func TestMain(m *testing.M) {
	e, stop := testenv.StartMain(testenv.WithCRDDirs("testdata/crds"))
	env = e
	cfg := rest.CopyConfig(e.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt} }
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		stop()
		panic(err)
	}
	opClient = c
	code := m.Run()
	stop()
	os.Exit(code)
}

type countingTransport struct{ next http.RoundTripper }

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	requests.Add(1)
	return t.next.RoundTrip(r)
}

// countRequests returns how many API requests f made through opClient.
func countRequests(f func()) int64 {
	before := requests.Load()
	f()
	return requests.Load() - before
}

// newNamespace creates a namespace for one test. Nothing deletes namespaces
// in envtest (there is no namespace controller), so each test gets a fresh one.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kube-op-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// run calls op do of a family over the local cluster, as the step "step" in
// namespace ns, through op.Direct (so errors have the one shape).
func run(ctx context.Context, do, ns string, params any) (op.Result, error) {
	o := New(Local(opClient)).Ops()[do]
	return op.Direct.Run(ctx, &op.Call{
		Name:   op.Name{Provider: "kube", Do: do},
		Path:   "test." + do,
		Op:     o,
		Params: params,
		Class:  o.Class(params),
		Step:   op.Step{RunUID: "uid", RunName: "run", Namespace: ns, StepName: "step", StepID: "step-1"},
	})
}

// mustRun is run with a background context, failing t on error.
func mustRun(t *testing.T, do, ns string, params any) map[string]any {
	t.Helper()
	res, err := run(context.Background(), do, ns, params)
	if err != nil {
		t.Fatalf("%s: %v", do, err)
	}
	m, ok := res.Returns.(map[string]any)
	if !ok {
		t.Fatalf("%s returned %T, want map[string]any", do, res.Returns)
	}
	return m
}

func configMap(ns, name string, data map[string]any) map[string]any {
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
}

func deployment(ns, name string, containers ...map[string]any) map[string]any {
	cs := make([]any, len(containers))
	for i, c := range containers {
		cs[i] = c
	}
	return map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas": 1,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": cs},
			},
		},
	}
}

func container(name, image string) map[string]any {
	return map[string]any{"name": name, "image": image}
}

// get returns a field of a nested map, failing t when the path is missing.
func get(t *testing.T, m map[string]any, path ...string) any {
	t.Helper()
	var v any = m
	for i, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: %v is %T, not an object", path, path[:i], v)
		}
		if v, ok = mm[k]; !ok {
			t.Fatalf("%v: no field %q", path, k)
		}
	}
	return v
}
