package controller_test

import (
	"context"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// requestLog records the controller's API requests to core/v1 kinds as
// "VERB PATH?labelSelector", VERB being get, list, watch or a write.
type requestLog struct {
	mu   sync.Mutex
	seen []string
}

type roundTripFunc func(*nethttp.Request) (*nethttp.Response, error)

func (f roundTripFunc) RoundTrip(r *nethttp.Request) (*nethttp.Response, error) { return f(r) }

func (l *requestLog) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt nethttp.RoundTripper) nethttp.RoundTripper {
		return roundTripFunc(func(r *nethttp.Request) (*nethttp.Response, error) {
			l.record(r)
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

func (l *requestLog) record(r *nethttp.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/v1/") {
		return
	}
	// /api/v1/[namespaces/NS/]RESOURCE[/NAME]
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	verb := strings.ToLower(r.Method)
	switch {
	case verb == "get" && len(parts) == 1 && r.URL.Query().Get("watch") == "true":
		verb = "watch"
	case verb == "get" && len(parts) == 1:
		verb = "list"
	}
	s := verb + " " + r.URL.Path
	if sel := r.URL.Query().Get("labelSelector"); sel != "" {
		s += "?" + sel
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, s)
}

// count returns how many requests of verb went to paths with prefix.
func (l *requestLog) count(verb, prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.seen {
		if strings.HasPrefix(s, verb+" "+prefix) {
			n++
		}
	}
	return n
}

func (l *requestLog) matching(f func(string) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.seen {
		if f(s) {
			out = append(out, s)
		}
	}
	return out
}

const readBoth = `import "vela/kube"

secret: kube.#Read & {$params: value: {apiVersion: "v1", kind: "Secret", metadata: name: "creds"}}
settings: kube.#Read & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "settings"}}
`

// The controller's cache holds only its own objects: the journal
// ConfigMaps by label, no other ConfigMap, no Secret ever; ops read a
// Secret with one GET each time, and N reads of a ConfigMap in the run's
// namespace cost one LIST and one WATCH of that namespace, not N GETs.
func TestCacheHoldsOwnObjectsOnly(t *testing.T) {
	ns := namespace(t, "own-cache")
	var log requestLog
	skip := true
	mgr, err := controller.NewManager(log.wrap(env.Config), ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := controller.Setup(mgr, controller.Options{SystemNamespace: ns, Metrics: prometheus.NewRegistry(), Sandbox: testSandbox()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	ctxb := context.Background()
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"a": "b"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "labelled", Labels: map[string]string{kubestore.RunLabel: "x"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}, Data: map[string][]byte{"k": []byte("v")}},
	} {
		if err := env.Client.Create(ctxb, o); err != nil {
			t.Fatal(err)
		}
	}
	stepDef(t, ns, "read-both", readBoth)
	// The runs act as the namespace's default ServiceAccount: let it read.
	grant(t, ns, tenancy.DefaultServiceAccount, rbacv1.PolicyRule{APIGroups: []string{""},
		Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get"}})
	const runs = 5
	for i := 0; i < runs; i++ {
		applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: read-%d, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: s, type: read-both}
`, i, ns))
		run := waitRun(t, ns, fmt.Sprintf("read-%d", i), 30*time.Second, finishedRun)
		if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("run %s: %s: %s", run.Name, run.Status.Phase, run.Status.Message)
		}
	}

	// The cache sees the journals, not the unrelated ConfigMap, and holds
	// no Secret informer (Get would start one: ask the informers map).
	cache := mgr.GetCache()
	var cm corev1.ConfigMap
	if err := cache.Get(ctxb, client.ObjectKey{Namespace: ns, Name: "unrelated"}, &cm); !apierrors.IsNotFound(err) {
		t.Errorf("the manager's cache sees an unlabelled ConfigMap: %v", err)
	}
	if err := cache.Get(ctxb, client.ObjectKey{Namespace: ns, Name: "labelled"}, &cm); err != nil {
		t.Errorf("the manager's cache misses a ConfigMap with the journal label: %v", err)
	}
	for _, s := range c.OpsReader.Scopes() {
		if s.GVK.Kind == "Secret" {
			t.Errorf("the ops' reader caches Secrets: %v", s)
		}
	}
	// No one ever listed or watched Secrets: no informer holds them.
	if got := log.matching(func(s string) bool {
		return (strings.HasPrefix(s, "list ") || strings.HasPrefix(s, "watch ")) && strings.Contains(s, "/secrets")
	}); len(got) > 0 {
		t.Errorf("Secrets listed or watched: %v", got)
	}
	if got := log.count("get", "/api/v1/namespaces/"+ns+"/secrets/creds"); got < runs {
		t.Errorf("%d GETs of the Secret for %d runs: each read should be one", got, runs)
	}
	// Every ConfigMap list or watch across namespaces is label-selected.
	if got := log.matching(func(s string) bool {
		return (strings.HasPrefix(s, "list /api/v1/configmaps") || strings.HasPrefix(s, "watch /api/v1/configmaps")) &&
			!strings.HasSuffix(s, "?"+kubestore.RunLabel)
	}); len(got) > 0 {
		t.Errorf("ConfigMaps listed or watched across namespaces without the journal label: %v", got)
	}
	want := map[string]int{"list": 1, "watch": 1, "get": 0}
	got := map[string]int{
		"list":  log.count("list", "/api/v1/namespaces/"+ns+"/configmaps"),
		"watch": log.count("watch", "/api/v1/namespaces/"+ns+"/configmaps"),
		"get":   log.count("get", "/api/v1/namespaces/"+ns+"/configmaps/settings"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests for %d reads of a ConfigMap in the run's namespace (-want +got):\n%s", runs, diff)
	}
}

// grant gives ServiceAccount ns/sa the rule in ns.
func grant(t *testing.T, ns, sa string, rule rbacv1.PolicyRule) {
	t.Helper()
	name := "grant-" + sa
	for _, o := range []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: []rbacv1.PolicyRule{rule}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}}},
	} {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}
