package clusters_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/opcache"
)

// events records what the registry's readers hand to Cache.OnEvent.
type events struct {
	mu   sync.Mutex
	seen []string // "cluster/namespace/name resourceVersion"
}

func (e *events) add(cluster string, obj client.Object) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, cluster+"/"+obj.GetNamespace()+"/"+obj.GetName()+" "+obj.GetResourceVersion())
}

// has waits (up to 10s) for an event of cluster/namespace/name at
// resourceVersion.
func (e *events) has(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e.mu.Lock()
		for _, s := range e.seen {
			if s == want {
				e.mu.Unlock()
				return
			}
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t.Errorf("no event %q; saw %v", want, e.seen)
}

// startCache gives the fixture's registry a cache whose events go to ev,
// and runs it until the test ends.
func (f *fixture) startCache(t *testing.T, ev *events) {
	t.Helper()
	var err error
	f.registry, err = f.newRegistry(&clusters.Cache{OnEvent: ev.add, InUse: func(string, opcache.Scope) bool { return false }})
	must(t, err)
	f.start(t)
}

// start runs the fixture's registry until the test ends.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.registry.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// read runs kube.read of ConfigMap name in the tenant's namespace on
// cluster as ServiceAccount sa, and returns the object's data.
func (f *fixture) read(t *testing.T, sa, cluster, name string) (map[string]any, error) {
	t.Helper()
	o := kube.New(f.registry).Ops()["read"]
	params := o.NewParams()
	b, err := json.Marshal(map[string]any{"cluster": cluster, "value": map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "namespace": f.tenantNS}}})
	must(t, err)
	must(t, json.Unmarshal(b, params))
	res, err := op.Direct.Run(context.Background(), &op.Call{
		Name: op.Name{Provider: "kube", Do: "read"}, Path: "wait.read", Op: o, Params: params, Class: o.Class(params),
		Step: op.Step{RunUID: "uid", RunName: "run", Namespace: f.tenantNS, StepName: "wait", StepID: "wait-1", ServiceAccount: sa},
	})
	if err != nil {
		return nil, err
	}
	returns, _ := res.Returns.(map[string]any)
	if e, ok := returns["err"]; ok {
		return nil, op.Permanentf("read: %v", e)
	}
	value, _ := returns["value"].(map[string]any)
	data, _ := value["data"].(map[string]any)
	return data, nil
}

// A step's reads on a joined cluster go through that cluster's watched
// cache: the ConfigMap's kind in its namespace is cached once read, its
// changes reach OnEvent with the cluster's name, and a read is served from
// the cache only after an access review of the step's user there: a
// ServiceAccount edge grants nothing is denied the object the cache holds.
func TestRemoteReadsGoThroughAWatchedCache(t *testing.T) {
	f := newFixture(t, false)
	var ev events
	f.startCache(t, &ev)
	kubeconfig, token := edgeTokenKubeconfig(t, true)
	stepflow(t, "cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	f.grantEdge(t)
	// nobody may use the cluster Secret, and nothing on edge.
	must(t, hub.Client.Create(context.Background(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.systemNS, Name: "nobody-uses-clusters"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "use-clusters"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.tenantNS, Name: "nobody"}},
	}))
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "ready"}, Data: map[string]string{"ready": "no"}}
	must(t, edge.Client.Create(ctx, cm))

	data, err := f.read(t, "runner", "edge", "ready")
	must(t, err)
	if data["ready"] != "no" {
		t.Errorf("read data %v, want ready=no", data)
	}
	want := opcache.Scope{GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: f.tenantNS}
	if scopes := f.registry.Scopes("edge"); len(scopes) != 1 || scopes[0] != want {
		t.Errorf("edge's cache holds %v, want only %s", scopes, want)
	}
	if scopes := f.registry.Scopes("local"); len(scopes) != 0 {
		t.Errorf("the local cluster has a remote cache: %v", scopes)
	}

	// An update on edge is an event of cluster edge.
	cm.Data["ready"] = "yes"
	must(t, edge.Client.Update(ctx, cm))
	ev.has(t, "edge/"+f.tenantNS+"/ready "+cm.ResourceVersion)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		data, err := f.read(t, "runner", "edge", "ready")
		must(t, err)
		if data["ready"] == "yes" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read never saw the update: %v", data)
		}
	}

	// The cache holds the object, but nobody may not read it on edge.
	_, err = f.read(t, "nobody", "edge", "ready")
	if !apierrors.IsForbidden(err) || !op.IsPermanent(err) || !strings.Contains(err.Error(), `cluster "edge" denies system:serviceaccount:`+f.tenantNS+":nobody") {
		t.Errorf("a user edge grants nothing: want a permanent denial by cluster edge, got %v", err)
	}
	noSecret(t, err, token)

	// Watch starts a scope without a read; a rotated Secret is a new
	// connection, with a new cache.
	must(t, f.registry.Watch("edge", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, f.tenantNS))
	if n := len(f.registry.Scopes("edge")); n != 2 {
		t.Errorf("after Watch of Deployments, edge's cache has %d scopes, want 2", n)
	}
	setToken(t, f, "edge", token+" ")
	_, _ = f.read(t, "runner", "edge", "ready")
	if scopes := f.registry.Scopes("edge"); len(scopes) != 1 || scopes[0] != want {
		t.Errorf("after the Secret changed, edge's cache holds %v, want only the new connection's %s", scopes, want)
	}
}

// A single-tenant controller reads a joined cluster through its cache
// with the Secret's credentials.
func TestSingleTenantRemoteReadsAreCached(t *testing.T) {
	f := newFixture(t, true)
	var ev events
	f.startCache(t, &ev)
	kubeconfig, _ := edgeTokenKubeconfig(t, true)
	stepflow(t, "cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "st"}, Data: map[string]string{"k": "v"}}
	must(t, edge.Client.Create(context.Background(), cm))
	data, err := f.read(t, "runner", "edge", "st")
	must(t, err)
	if data["k"] != "v" || len(f.registry.Scopes("edge")) != 1 {
		t.Errorf("data %v, scopes %v; want k=v through one cached scope", data, f.registry.Scopes("edge"))
	}
	ev.has(t, "edge/"+f.tenantNS+"/st "+cm.ResourceVersion)
}

// A connection made before the registry runs reads directly; once it
// runs, the same connection reads through a cache.
func TestConnectionMadeBeforeStartCachesOnceStarted(t *testing.T) {
	f := newFixture(t, false)
	var ev events
	var err error
	f.registry, err = f.newRegistry(&clusters.Cache{OnEvent: ev.add})
	must(t, err)
	kubeconfig, _ := edgeTokenKubeconfig(t, true)
	stepflow(t, "cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	f.grantEdge(t)
	must(t, edge.Client.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "early"}}))
	_, err = f.read(t, "runner", "edge", "early")
	must(t, err)
	if scopes := f.registry.Scopes("edge"); len(scopes) != 0 {
		t.Fatalf("a registry that does not run caches %v", scopes)
	}
	f.start(t)
	for deadline := time.Now().Add(10 * time.Second); len(f.registry.Scopes("edge")) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("once started, reads of the connection made before never went through a cache")
		}
		_, err = f.read(t, "runner", "edge", "early")
		must(t, err)
	}
}
