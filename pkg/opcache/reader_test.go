package opcache_test

import (
	"context"
	"fmt"
	clocktesting "k8s.io/utils/clock/testing"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/opcache"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var stop func()
	env, stop = testenv.StartMain()
	code := m.Run()
	stop()
	os.Exit(code)
}

var (
	configMapGVK = corev1.SchemeGroupVersion.WithKind("ConfigMap")
	secretGVK    = corev1.SchemeGroupVersion.WithKind("Secret")
)

// requests counts the API requests made through a config, by verb and
// resource: "list configmaps", "watch configmaps", "get secrets".
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			r.count(req)
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (r *requests) count(req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/namespaces/NS/RESOURCE[/NAME] or /api/v1/RESOURCE[/NAME]
	if len(parts) < 3 || parts[0] != "api" {
		return
	}
	rest := parts[2:]
	if len(rest) >= 2 && rest[0] == "namespaces" && len(rest) > 2 {
		rest = rest[2:]
	}
	verb := strings.ToLower(req.Method)
	switch {
	case verb == "get" && len(rest) == 1 && req.URL.Query().Get("watch") == "true":
		verb = "watch"
	case verb == "get" && len(rest) == 1:
		verb = "list"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[verb+" "+rest[0]]++
}

func (r *requests) get() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.n {
		out[k] = v
	}
	return out
}

// start runs a reader whose requests (informers' and direct reads') go
// through cfg, until the test ends.
func start(t *testing.T, cfg *rest.Config, o opcache.Options) *opcache.Reader {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(env.Config, hc)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(cfg, client.Options{HTTPClient: hc, Scheme: env.Scheme, Mapper: mapper})
	if err != nil {
		t.Fatal(err)
	}
	o.Config, o.HTTPClient, o.Scheme, o.Mapper, o.Direct = cfg, hc, env.Scheme, mapper, direct
	r, err := opcache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Start has run once reads are served by a scope.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.Watch(corev1.SchemeGroupVersion.WithKind("Namespace"), ""); err == nil && len(r.Scopes()) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func configMap(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "x"}},
		Data: map[string]string{"name": name}}
}

func get(t *testing.T, r client.Reader, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := r.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("get %s %s/%s: %v", gvk.Kind, ns, name, err)
	}
	return u
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// N reads of one kind in one namespace cost one LIST and one WATCH, typed
// or unstructured, Get or List; objects come without managedFields.
func TestReadsOfOneScopeCostOneListAndOneWatch(t *testing.T) {
	ns := namespace(t, "reads-one-scope")
	create(t, configMap(ns, "a"), configMap(ns, "b"), configMap(ns, "c"))
	var n requests
	r := start(t, n.wrap(env.Config), opcache.Options{})

	for i := 0; i < 10; i++ {
		for _, name := range []string{"a", "b", "c"} {
			u := get(t, r, configMapGVK, ns, name)
			if got, _, _ := unstructured.NestedString(u.Object, "data", "name"); got != name {
				t.Fatalf("read %s: data.name %q", name, got)
			}
			if u.GetManagedFields() != nil {
				t.Fatalf("read %s with managedFields", name)
			}
			var cm corev1.ConfigMap
			if err := r.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil || cm.Data["name"] != name {
				t.Fatalf("typed read %s: %v %v", name, err, cm.Data)
			}
		}
		var list corev1.ConfigMapList
		if err := r.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"app": "x"}); err != nil || len(list.Items) != 3 {
			t.Fatalf("list: %v, %d items", err, len(list.Items))
		}
	}
	eventually(t, "the informer's watch", func() bool { return n.get()["watch configmaps"] == 1 })
	if diff := cmp.Diff(map[string]int{"list configmaps": 1, "watch configmaps": 1}, withoutNamespaces(n.get())); diff != "" {
		t.Errorf("requests for 70 reads (-want +got):\n%s", diff)
	}
	want := []opcache.Scope{{GVK: configMapGVK, Namespace: ns}, {GVK: corev1.SchemeGroupVersion.WithKind("Namespace")}}
	if diff := cmp.Diff(want, r.Scopes()); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
}

func withoutNamespaces(m map[string]int) map[string]int {
	delete(m, "list namespaces")
	delete(m, "watch namespaces")
	return m
}

// Secrets are read from the API server each time, and never cached.
func TestSecretsAreNeverCached(t *testing.T) {
	ns := namespace(t, "secrets-direct")
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}, Data: map[string][]byte{"k": []byte("v")}})
	var n requests
	r := start(t, n.wrap(env.Config), opcache.Options{})
	for i := 0; i < 3; i++ {
		get(t, r, secretGVK, ns, "s")
		var s corev1.Secret
		if err := r.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "s"}, &s); err != nil || string(s.Data["k"]) != "v" {
			t.Fatalf("typed read: %v %v", err, s.Data)
		}
	}
	var list corev1.SecretList
	if err := r.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := r.Watch(secretGVK, ns); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"get secrets": 6, "list secrets": 1}, withoutNamespaces(n.get())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	for _, s := range r.Scopes() {
		if s.GVK.Kind == "Secret" {
			t.Errorf("a Secret informer: %v", s)
		}
	}
}

// Lists across all namespaces and with a field selector are not cached.
func TestUncacheableListsAreDirect(t *testing.T) {
	ns := namespace(t, "lists-direct")
	create(t, configMap(ns, "a"))
	var n requests
	r := start(t, n.wrap(env.Config), opcache.Options{})
	var list corev1.ConfigMapList
	if err := r.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	if err := r.List(context.Background(), &list, client.InNamespace(ns), client.MatchingFields{"metadata.name": "a"}); err != nil || len(list.Items) != 1 {
		t.Fatalf("list by field: %v, %d items", err, len(list.Items))
	}
	if diff := cmp.Diff(map[string]int{"list configmaps": 2}, withoutNamespaces(n.get())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got := len(r.Scopes()); got != 1 { // the Namespace scope of start
		t.Errorf("scopes %v", r.Scopes())
	}
}

// Scopes nobody used for IdleTimeout stop, unless InUse holds them; at
// most MaxInformers run, the least recently used stopping first; a
// stopped scope starts again on its next read.
func TestIdleAndLeastRecentlyUsedScopesStop(t *testing.T) {
	nss := []string{namespace(t, "lru-1"), namespace(t, "lru-2"), namespace(t, "lru-3")}
	for _, ns := range nss {
		create(t, configMap(ns, "a"))
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	held := opcache.Scope{GVK: configMapGVK, Namespace: nss[2]}
	var n requests
	r := start(t, n.wrap(env.Config), opcache.Options{MaxInformers: 3, IdleTimeout: time.Minute, Now: clk.Now,
		InUse: func(s opcache.Scope) bool { return s == held }})
	scope := func(ns string) opcache.Scope { return opcache.Scope{GVK: configMapGVK, Namespace: ns} }
	nsScope := opcache.Scope{GVK: corev1.SchemeGroupVersion.WithKind("Namespace")}

	clk.Step(time.Second)
	get(t, r, configMapGVK, nss[0], "a")
	clk.Step(time.Second)
	get(t, r, configMapGVK, nss[1], "a")
	// Three scopes run (the Namespace one of start first): the fourth
	// stops the oldest.
	if diff := cmp.Diff([]opcache.Scope{scope(nss[0]), scope(nss[1]), nsScope}, r.Scopes()); diff != "" {
		t.Fatalf("scopes (-want +got):\n%s", diff)
	}
	clk.Step(time.Second)
	get(t, r, configMapGVK, nss[2], "a")
	if diff := cmp.Diff([]opcache.Scope{scope(nss[0]), scope(nss[1]), scope(nss[2])}, r.Scopes()); diff != "" {
		t.Fatalf("after a fourth scope (-want +got):\n%s", diff)
	}
	clk.Step(time.Second)
	get(t, r, configMapGVK, nss[0], "a") // nss[0] is now the most recent
	clk.Step(30 * time.Second)
	r.Sweep()
	if got := len(r.Scopes()); got != 3 {
		t.Fatalf("a sweep before IdleTimeout stopped scopes: %v", r.Scopes())
	}
	clk.Step(31 * time.Second)
	r.Sweep() // all three idle for over a minute; nss[2] is held
	if diff := cmp.Diff([]opcache.Scope{scope(nss[2])}, r.Scopes()); diff != "" {
		t.Fatalf("after the sweep (-want +got):\n%s", diff)
	}
	lists := n.get()["list configmaps"]
	get(t, r, configMapGVK, nss[0], "a")
	if got := n.get()["list configmaps"]; got != lists+1 {
		t.Errorf("a stopped scope read again: %d more LISTs, want 1", got-lists)
	}
}

// A kind the reader may get but not list or watch is read with GETs, with
// no informer retrying in the background, until ForbiddenRetry is over.
func TestForbiddenScopeFallsBackToGets(t *testing.T) {
	ns := namespace(t, "forbidden")
	create(t, configMap(ns, "a"))
	const user = "opcache-getter"
	create(t,
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "get-configmaps"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "get-configmaps"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "get-configmaps"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: user}}},
	)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var n requests
	r := start(t, n.wrap(cfg), opcache.Options{ForbiddenRetry: time.Minute, Now: clk.Now})

	get(t, r, configMapGVK, ns, "a")
	lists := n.get()["list configmaps"]
	if lists == 0 {
		t.Fatalf("no informer was tried: %v", n.get())
	}
	for i := 0; i < 3; i++ {
		get(t, r, configMapGVK, ns, "a")
	}
	// The refused informer is stopped: give a retrying one time to show.
	time.Sleep(1500 * time.Millisecond)
	got := n.get()
	if got["list configmaps"] != lists || got["get configmaps"] != 4 {
		t.Errorf("after a refusal: %d more LISTs (want 0), %d GETs (want 4)", got["list configmaps"]-lists, got["get configmaps"])
	}
	for _, s := range r.Scopes() {
		if s.GVK == configMapGVK {
			t.Errorf("a refused scope still runs: %v", s)
		}
	}
	clk.Step(time.Minute)
	r.Sweep()
	get(t, r, configMapGVK, ns, "a")
	if got := n.get()["list configmaps"]; got == lists {
		t.Errorf("no informer tried again after ForbiddenRetry")
	}
}

// Watch starts a scope without waiting for it, and OnEvent hears of its
// objects' changes.
func TestWatchDeliversEvents(t *testing.T) {
	ns := namespace(t, "events")
	var mu sync.Mutex
	seen := map[string]int{}
	r := start(t, env.Config, opcache.Options{OnEvent: func(o client.Object) {
		mu.Lock()
		defer mu.Unlock()
		seen[fmt.Sprintf("%s %s/%s", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName())]++
	}})
	if err := r.Watch(configMapGVK, ns); err != nil {
		t.Fatal(err)
	}
	create(t, configMap(ns, "late"))
	eventually(t, "an event of the created ConfigMap", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["ConfigMap "+ns+"/late"] > 0
	})
	if err := r.Watch(schema.GroupVersionKind{Group: "nowhere.example", Version: "v1", Kind: "Thing"}, ns); err == nil {
		t.Error("watching a kind the server does not serve: no error")
	}
}
