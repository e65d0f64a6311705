package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	clocktesting "k8s.io/utils/clock/testing"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var stop func()
	env, stop = testenv.StartMain()
	code := m.Run()
	stop()
	os.Exit(code)
}

// counter counts the requests sent through a rest.Config, by path.
type counter struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *counter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			c.mu.Lock()
			c.paths[r.Method+" "+r.URL.Path]++
			c.mu.Unlock()
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = map[string]int{}
}

// matching sums the requests whose method and path contain s.
func (c *counter) matching(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for p, k := range c.paths {
		if strings.Contains(p, s) {
			n += k
		}
	}
	return n
}

func (c *counter) total() int { return c.matching("") }

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// world is two tenants and a platform namespace holding Secret db.
type world struct {
	ctx      context.Context
	a, b     string // tenant namespaces
	platform string
	f        *tenancy.Factory
	count    *counter
	cache    cache.Cache
}

var worlds atomic.Int64

var configMapRules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
	Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}}}

func newWorld(t *testing.T, prefix string, opts ...func(*tenancy.Options)) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Namespaces are never deleted in envtest: a fresh set for each run.
	prefix = fmt.Sprintf("%s-%d", prefix, worlds.Add(1))
	w := &world{ctx: ctx, a: prefix + "-tenant-a", b: prefix + "-tenant-b", platform: prefix + "-platform", count: &counter{}}
	for _, ns := range []string{w.a, w.b, w.platform} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.platform, Name: "db"}, Data: map[string][]byte{"password": []byte("hunter2")}})
	for _, ns := range []string{w.a, w.b} {
		if err := tenancy.SetUpRunner(ctx, env.Client, ns, tenancy.DefaultServiceAccount, configMapRules); err != nil {
			t.Fatal(err)
		}
	}

	// The controller: an informer cache as the shared reader (not
	// counted: its list and watch are not per-read requests), and an
	// uncached client whose requests are counted.
	c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	w.cache = c
	w.count.reset()
	cfg := w.count.wrap(env.Config)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	uncached, err := client.New(cfg, client.Options{Scheme: env.Scheme, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	// Discover the kinds now, so the counts below are the ops' own.
	for _, gk := range []schema.GroupKind{{Kind: "ConfigMap"}, {Kind: "Secret"}, {Group: "apps", Kind: "Deployment"}} {
		if _, err := uncached.RESTMapper().RESTMapping(gk); err != nil {
			t.Fatal(err)
		}
	}
	o := tenancy.Options{Config: cfg, HTTPClient: hc, Reader: c, Client: uncached}
	for _, opt := range opts {
		opt(&o)
	}
	w.f, err = tenancy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	w.count.reset()
	return w
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func (w *world) as(t *testing.T, ns, name string) client.Client {
	t.Helper()
	c, err := w.f.For(tenancy.Identity{Namespace: ns, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func configMap(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string]string{"k": "v"},
	}
}

func deployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{HostPID: true, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

func apply(ctx context.Context, c client.Client, obj client.Object) error {
	return c.Patch(ctx, obj, client.Apply, client.FieldOwner("stepflow"), client.ForceOwnership)
}

// wantDenied checks that err is a permanent Denied with message msg.
func wantDenied(t *testing.T, err error, msg string) {
	t.Helper()
	var d *tenancy.Denied
	if !errors.As(err, &d) || !op.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent denial %q", err, msg)
	}
	if err.Error() != msg {
		t.Errorf("message\n  %s\nwant\n  %s", err.Error(), msg)
	}
}

func TestDenials(t *testing.T) {
	w := newWorld(t, "deny")
	a := w.as(t, w.a, tenancy.DefaultServiceAccount)
	sa := "serviceaccount " + w.a + "/stepflow-runner"

	err := a.Get(w.ctx, client.ObjectKey{Namespace: w.platform, Name: "db"}, &corev1.Secret{})
	wantDenied(t, err, sa+` may not get secrets "db" in namespace "`+w.platform+`"`)

	err = apply(w.ctx, a, configMap(w.b, "export"))
	wantDenied(t, err, sa+` may not patch configmaps "export" in namespace "`+w.b+`"`)

	err = a.Create(w.ctx, configMap(w.b, "created"))
	wantDenied(t, err, sa+` may not create configmaps "created" in namespace "`+w.b+`"`)

	err = a.List(w.ctx, &corev1.ConfigMapList{}, client.InNamespace(w.b))
	wantDenied(t, err, sa+` may not list configmaps in namespace "`+w.b+`"`)

	err = a.Get(w.ctx, client.ObjectKey{Namespace: w.b, Name: "x"}, &corev1.ConfigMap{})
	wantDenied(t, err, sa+` may not get configmaps "x" in namespace "`+w.b+`"`)

	// No rights on Deployments at all, least of all in kube-system.
	err = apply(w.ctx, a, deployment("kube-system", "pwn"))
	wantDenied(t, err, sa+` may not patch deployments.apps "pwn" in namespace "kube-system"`)

	// The same identity in its own namespace: allowed.
	if err := apply(w.ctx, a, configMap(w.a, "export")); err != nil {
		t.Fatalf("apply in its own namespace: %v", err)
	}
	if err := a.Delete(w.ctx, configMap(w.a, "export")); err != nil {
		t.Fatalf("delete in its own namespace: %v", err)
	}
}

// A ServiceAccount granted more gets more: here a deployer of tenant-a
// that may read platform's Secret db by name (a resourceNames rule, which
// a namespace-wide review cannot see) and write ConfigMaps in tenant-b.
func TestGranted(t *testing.T) {
	w := newWorld(t, "grant")
	deployer := "deployer"
	if err := tenancy.SetUpRunner(w.ctx, env.Client, w.a, deployer, nil); err != nil {
		t.Fatal(err)
	}
	grant(t, w.platform, "read-db", deployer, w.a, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"db"}, Verbs: []string{"get"}})
	grant(t, w.b, "write-cm", deployer, w.a, configMapRules[0])

	d := w.as(t, w.a, deployer)
	var s corev1.Secret
	if err := d.Get(w.ctx, client.ObjectKey{Namespace: w.platform, Name: "db"}, &s); err != nil {
		t.Fatalf("granted secret read: %v", err)
	}
	if string(s.Data["password"]) != "hunter2" {
		t.Errorf("secret data %v", s.Data)
	}
	if n := w.count.matching("GET /api/v1/namespaces/" + w.platform + "/secrets/db"); n != 1 {
		t.Errorf("the secret was read with %d GETs, want one direct GET", n)
	}
	if err := apply(w.ctx, d, configMap(w.b, "export")); err != nil {
		t.Fatalf("granted apply into %s: %v", w.b, err)
	}
	// The default runner of the same namespace still may not.
	err := apply(w.ctx, w.as(t, w.a, ""), configMap(w.b, "export"))
	wantDenied(t, err, "serviceaccount "+w.a+`/stepflow-runner may not patch configmaps "export" in namespace "`+w.b+`"`)
}

// Secrets never go through the shared reader, so never into its cache.
func TestSecretsAreNotCached(t *testing.T) {
	w := newWorld(t, "nocache")
	if err := tenancy.SetUpRunner(w.ctx, env.Client, w.a, "reader", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.a, Name: "token"}, Data: map[string][]byte{"t": []byte("x")}})
	r := w.as(t, w.a, "reader")
	for range 3 {
		if err := r.Get(w.ctx, client.ObjectKey{Namespace: w.a, Name: "token"}, &corev1.Secret{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.List(w.ctx, &corev1.SecretList{}, client.InNamespace(w.a)); err != nil {
		t.Fatal(err)
	}
	if n := w.count.matching("/secrets"); n != 4 {
		t.Errorf("%d secret requests to the API server, want 4 (each read direct)", n)
	}
	if n := w.count.matching("subjectaccessreviews"); n != 0 {
		t.Errorf("%d access reviews for Secret reads, want none (the API server decides)", n)
	}
}

// One identity in one namespace: n reads cost one review (and the
// controller's two self-reviews of the kind, once), n writes n requests.
func TestRequestBudget(t *testing.T) {
	w := newWorld(t, "budget")
	a := w.as(t, w.a, "")
	const n = 20
	for i := range n {
		cm := configMap(w.a, "cm")
		cm.Data["i"] = string(rune('a' + i))
		if err := apply(w.ctx, a, cm); err != nil {
			t.Fatal(err)
		}
		got := &corev1.ConfigMap{}
		err := pollGet(w.ctx, a, client.ObjectKey{Namespace: w.a, Name: "cm"}, got)
		if err != nil {
			t.Fatal(err)
		}
	}
	writes := w.count.matching("PATCH /api/v1/namespaces/" + w.a + "/configmaps/cm")
	sars := w.count.matching("POST /apis/authorization.k8s.io/v1/subjectaccessreviews")
	self := w.count.matching("POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
	if writes != n || sars != 1 || self != 2 || w.count.total() != n+3 {
		t.Errorf("%d reads and %d writes cost %d writes, %d reviews, %d self-reviews, %d requests in all; want %d, 1, 2, %d: %v",
			n, n, writes, sars, self, w.count.total(), n, n+3, w.count.paths)
	}
}

// pollGet reads until the shared cache has the object.
func pollGet(ctx context.Context, c client.Client, key client.ObjectKey, obj client.Object) error {
	var err error
	for range 100 {
		if err = c.Get(ctx, key, obj); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func grant(t *testing.T, ns, name, sa, saNamespace string, rule rbacv1.PolicyRule) {
	t.Helper()
	mustCreate(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: []rbacv1.PolicyRule{rule}})
	mustCreate(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNamespace, Name: sa}}})
	attrs := authorizationv1.ResourceAttributes{Namespace: ns, Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0]}
	if len(rule.ResourceNames) > 0 {
		attrs.Name = rule.ResourceNames[0]
	}
	testenv.WaitAllowed(t, env.Client, "system:serviceaccount:"+saNamespace+":"+sa, attrs)
}

// Answers are kept for their TTL (allowed a minute, denied ten seconds),
// at most MaxReviews of them, and a question asked by many at once is
// reviewed once.
func TestReviewsAreCachedForAWhile(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1e9, 0))
	w := newWorld(t, "ttl", func(o *tenancy.Options) { o.Now = clk.Now; o.MaxReviews = 3 })
	a := w.as(t, w.a, "")
	mustCreate(t, configMap(w.a, "here"))
	sars := func() int { return w.count.matching("POST /apis/authorization.k8s.io/v1/subjectaccessreviews") }
	get := func(ns, name string) error {
		return pollGet(w.ctx, a, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := get(w.a, "here"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := sars(); n != 1 {
		t.Fatalf("10 concurrent reads: %d reviews, want 1", n)
	}
	clk.Step(59 * time.Second)
	if err := get(w.a, "here"); err != nil || sars() != 1 {
		t.Errorf("within the minute: %v, %d reviews, want 1", err, sars())
	}
	clk.Step(2 * time.Second)
	if err := get(w.a, "here"); err != nil || sars() != 2 {
		t.Errorf("after the minute: %v, %d reviews, want 2", err, sars())
	}

	// Denied: the review's no is kept ten seconds; each read still goes to
	// the API server as the identity, which decides.
	deniedGet := func() {
		t.Helper()
		err := a.Get(w.ctx, client.ObjectKey{Namespace: w.b, Name: "there"}, &corev1.ConfigMap{})
		var d *tenancy.Denied
		if !errors.As(err, &d) {
			t.Fatalf("want a denial, got %v", err)
		}
	}
	deniedGet()
	deniedGet()
	if n := sars(); n != 3 {
		t.Errorf("two denied reads: %d reviews in all, want 3", n)
	}
	clk.Step(11 * time.Second)
	deniedGet()
	if n := sars(); n != 4 {
		t.Errorf("a denied read after ten seconds: %d reviews in all, want 4", n)
	}

	// Bounded: with room for 3 answers, asking 3 more questions pushes the
	// first out (after it expired too, so the fourth evicts an expired
	// one); the fresh ones stay.
	for _, verb := range []func() error{
		func() error { return a.List(w.ctx, &corev1.ConfigMapList{}, client.InNamespace(w.a)) },
		func() error { return a.List(w.ctx, &corev1.ServiceAccountList{}, client.InNamespace(w.a)) },
	} {
		_ = verb()
	}
	before := sars()
	if err := a.List(w.ctx, &corev1.ConfigMapList{}, client.InNamespace(w.a)); err != nil || sars() != before {
		t.Errorf("a fresh answer was evicted: %v, %d reviews, want %d", err, sars(), before)
	}
}
