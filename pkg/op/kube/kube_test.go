package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

func TestApplyCreatesThenUpdates(t *testing.T) {
	ns := newNamespace(t)
	created := mustRun(t, "apply", ns, &applyParams{Value: configMap(ns, "cm", map[string]any{"a": "1"})})
	obj := created["value"].(map[string]any)
	uid := get(t, obj, "metadata", "uid")
	rv := get(t, obj, "metadata", "resourceVersion")
	if uid == "" || rv == "" {
		t.Fatalf("apply did not return the server's object: %v", obj)
	}

	// The flat dialect feeds the returned object back as value: the server
	// fields in it must not get in the way.
	next := created["value"].(map[string]any)
	next["data"] = map[string]any{"a": "2"}
	updated := mustRun(t, "apply", ns, &applyParams{
		Value: next,
		Patch: map[string]any{"metadata": map[string]any{"labels": map[string]any{"tier": "web"}}},
	})["value"].(map[string]any)
	if got := get(t, updated, "metadata", "uid"); got != uid {
		t.Errorf("uid changed from %v to %v: the object was replaced", uid, got)
	}
	if got := get(t, updated, "metadata", "resourceVersion"); got == rv {
		t.Errorf("resourceVersion did not change on update")
	}
	if got := get(t, updated, "data", "a"); got != "2" {
		t.Errorf("data.a = %v, want 2", got)
	}
	if got := get(t, updated, "metadata", "labels", "tier"); got != "web" {
		t.Errorf("patch was not merged: labels.tier = %v", got)
	}

	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cm"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["a"] != "2" {
		t.Errorf("the cluster has data %v", cm.Data)
	}
	var owners []string
	for _, mf := range cm.ManagedFields {
		owners = append(owners, fmt.Sprintf("%s/%s", mf.Manager, mf.Operation))
	}
	if len(owners) != 1 || owners[0] != FieldOwner+"/Apply" {
		t.Errorf("field managers = %v, want only %s/Apply", owners, FieldOwner)
	}
}

func TestApplyForcesOwnership(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	// Another manager owns data.a through its own apply.
	u := &unstructured.Unstructured{Object: configMap(ns, "cm", map[string]any{"a": "theirs"})}
	if err := env.Client.Patch(ctx, u, client.Apply, client.FieldOwner("someone-else")); err != nil {
		t.Fatal(err)
	}
	got := mustRun(t, "apply", ns, &applyParams{Value: configMap(ns, "cm", map[string]any{"a": "ours"})})
	if v := get(t, got["value"].(map[string]any), "data", "a"); v != "ours" {
		t.Errorf("data.a = %v: apply did not take ownership", v)
	}
}

func TestApplyDeploymentReturnsStatus(t *testing.T) {
	ns := newNamespace(t)
	got := mustRun(t, "apply", ns, &applyParams{Value: deployment(ns, "web", container("app", "nginx:1"))})
	obj := got["value"].(map[string]any)
	if _, ok := obj["status"]; !ok {
		t.Errorf("the returned Deployment has no status: %v", obj)
	}
	if got := get(t, obj, "spec", "replicas"); got != int64(1) {
		t.Errorf("spec.replicas = %#v, want int64(1)", got)
	}
	// Status in the input is dropped, not sent (it would fail or be ignored).
	in := deployment(ns, "web", container("app", "nginx:2"))
	in["status"] = map[string]any{"replicas": 5}
	mustRun(t, "apply", ns, &applyParams{Value: in})
}

func TestApplyNamespaceDefaulting(t *testing.T) {
	stepNS, otherNS := newNamespace(t), newNamespace(t)

	got := mustRun(t, "apply", stepNS, &applyParams{Value: configMap("", "defaulted", nil)})
	if ns := get(t, got["value"].(map[string]any), "metadata", "namespace"); ns != stepNS {
		t.Errorf("namespace = %v, want the step's %s", ns, stepNS)
	}
	got = mustRun(t, "apply", stepNS, &applyParams{Value: configMap(otherNS, "explicit", nil)})
	if ns := get(t, got["value"].(map[string]any), "metadata", "namespace"); ns != otherNS {
		t.Errorf("namespace = %v, want the explicit %s", ns, otherNS)
	}

	// A cluster-scoped kind gets no namespace.
	name := stepNS + "-created-by-apply"
	got = mustRun(t, "apply", stepNS, &applyParams{Value: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name},
	}})
	meta := get(t, got["value"].(map[string]any), "metadata").(map[string]any)
	if ns, ok := meta["namespace"]; ok {
		t.Errorf("cluster-scoped Namespace got metadata.namespace %v", ns)
	}

	// A namespaced kind with no namespace anywhere cannot be placed.
	_, err := run(context.Background(), "apply", "", &applyParams{Value: configMap("", "nowhere", nil)})
	if !op.IsPermanent(err) || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("want a permanent error about the namespace, got %v", err)
	}
}

func TestApplyInParallel(t *testing.T) {
	ns := newNamespace(t)
	var values []map[string]any
	for i := range 12 {
		values = append(values, configMap("", fmt.Sprintf("cm-%02d", i), map[string]any{"i": fmt.Sprint(i)}))
	}
	got := mustRun(t, "apply-in-parallel", ns, &applyInParallelParams{Value: values})
	list := got["value"].([]any)
	if len(list) != len(values) {
		t.Fatalf("got %d objects, want %d", len(list), len(values))
	}
	for i, o := range list {
		obj := o.(map[string]any)
		if name := get(t, obj, "metadata", "name"); name != fmt.Sprintf("cm-%02d", i) {
			t.Errorf("value[%d] is %v: results out of order", i, name)
		}
		if get(t, obj, "metadata", "uid") == "" {
			t.Errorf("value[%d] has no uid", i)
		}
	}

	// One bad object fails the call before anything is applied.
	bad := []map[string]any{configMap("", "fine", nil), {"apiVersion": "v1", "metadata": map[string]any{"name": "x"}}}
	n := countRequests(func() {
		_, err := run(context.Background(), "apply-in-parallel", ns, &applyInParallelParams{Value: bad})
		if !op.IsPermanent(err) || !strings.Contains(err.Error(), "value[1]") {
			t.Errorf("want a permanent error naming value[1], got %v", err)
		}
	})
	if n != 0 {
		t.Errorf("invalid params made %d requests, want 0", n)
	}
}

func TestRead(t *testing.T) {
	ns := newNamespace(t)
	mustRun(t, "apply", ns, &applyParams{Value: configMap("", "there", map[string]any{"k": "v"})})

	got := mustRun(t, "read", ns, &readParams{Value: configMap("", "there", nil)})
	if v := get(t, got, "value", "data", "k"); v != "v" {
		t.Errorf("data.k = %v", v)
	}
	if _, ok := got["err"]; ok {
		t.Errorf("a found object has err %v", got["err"])
	}

	got = mustRun(t, "read", ns, &readParams{Value: configMap("", "missing", nil)})
	msg, _ := got["err"].(string)
	if !strings.Contains(msg, "not found") {
		t.Errorf("err = %q, want a not-found message", msg)
	}
	if _, ok := got["value"]; ok {
		t.Errorf("a missing object has a value")
	}
}

func TestList(t *testing.T) {
	ns1, ns2 := newNamespace(t), newNamespace(t)
	label := ns1 // unique to this test
	withLabel := func(obj map[string]any, v string) map[string]any {
		obj["metadata"].(map[string]any)["labels"] = map[string]any{"list-test": v}
		return obj
	}
	for _, obj := range []map[string]any{
		withLabel(configMap(ns1, "a", nil), label),
		withLabel(configMap(ns1, "b", nil), label),
		withLabel(configMap(ns1, "c", nil), "other"),
		withLabel(configMap(ns2, "d", nil), label),
	} {
		mustRun(t, "apply", ns1, &applyParams{Value: obj})
	}
	names := func(res map[string]any) []string {
		list := res["list"].(map[string]any)
		if list["kind"] != "ConfigMapList" || list["apiVersion"] != "v1" {
			t.Errorf("list is %v %v", list["apiVersion"], list["kind"])
		}
		if _, ok := list["metadata"]; !ok {
			t.Errorf("list has no metadata")
		}
		var out []string
		for _, it := range list["items"].([]any) {
			m := it.(map[string]any)["metadata"].(map[string]any)
			out = append(out, m["namespace"].(string)+"/"+m["name"].(string))
		}
		return out
	}
	cmRes := listParams{}
	cmRes.Resource.APIVersion, cmRes.Resource.Kind = "v1", "ConfigMap"

	for _, tc := range []struct {
		name   string
		filter *filter
		want   []string
	}{
		{"namespace and labels", &filter{Namespace: ns1, MatchingLabels: map[string]string{"list-test": label}}, []string{ns1 + "/a", ns1 + "/b"}},
		{"labels in every namespace", &filter{MatchingLabels: map[string]string{"list-test": label}}, []string{ns1 + "/a", ns1 + "/b", ns2 + "/d"}},
		{"namespace only", &filter{Namespace: ns2}, []string{ns2 + "/d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := cmRes
			p.Filter = tc.filter
			got := names(mustRun(t, "list", ns1, &p))
			slices.Sort(got) // the server orders by key: namespace, then name
			slices.Sort(tc.want)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("listed %v, want %v", got, tc.want)
			}
		})
	}

	// An empty result is an empty list, not a missing one.
	p := cmRes
	p.Filter = &filter{MatchingLabels: map[string]string{"list-test": "nothing"}}
	got := mustRun(t, "list", ns1, &p)
	if items := get(t, got, "list", "items").([]any); len(items) != 0 {
		t.Errorf("items = %v", items)
	}
}

func TestDelete(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	exists := func(name string) bool {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	labelled := func(name, v string) map[string]any {
		cm := configMap("", name, nil)
		cm["metadata"].(map[string]any)["labels"] = map[string]any{"del": v}
		return cm
	}
	for _, obj := range []map[string]any{configMap("", "one", nil), labelled("l1", "yes"), labelled("l2", "yes"), labelled("l3", "no")} {
		mustRun(t, "apply", ns, &applyParams{Value: obj})
	}

	t.Run("by object", func(t *testing.T) {
		if got := mustRun(t, "delete", ns, &deleteParams{Value: configMap("", "one", nil)}); len(got) != 0 {
			t.Errorf("returns %v, want {}", got)
		}
		if exists("one") {
			t.Errorf("one still exists")
		}
		// A missing object is already deleted.
		mustRun(t, "delete", ns, &deleteParams{Value: configMap("", "one", nil)})
	})
	t.Run("by filter", func(t *testing.T) {
		value := map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}
		mustRun(t, "delete", ns, &deleteParams{Value: value, Filter: &filter{MatchingLabels: map[string]string{"del": "yes"}}})
		if exists("l1") || exists("l2") {
			t.Errorf("labelled objects still exist")
		}
		if !exists("l3") {
			t.Errorf("an object the filter does not match was deleted")
		}
	})
	t.Run("neither name nor filter", func(t *testing.T) {
		_, err := run(ctx, "delete", ns, &deleteParams{Value: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}})
		if !op.IsPermanent(err) {
			t.Errorf("want a permanent error, got %v", err)
		}
	})
	t.Run("a whole cluster-scoped kind", func(t *testing.T) {
		_, err := run(ctx, "delete", ns, &deleteParams{
			Value:  map[string]any{"apiVersion": "v1", "kind": "Namespace"},
			Filter: &filter{},
		})
		if !op.IsPermanent(err) {
			t.Errorf("want a permanent refusal, got %v", err)
		}
	})
	if c := (&deleteOp{}).Class(&deleteParams{}); c != op.Effect {
		t.Errorf("delete is %v, want effect", c)
	}
}

func TestPatch(t *testing.T) {
	ns := newNamespace(t)

	t.Run("strategic for a Deployment", func(t *testing.T) {
		mustRun(t, "apply", ns, &applyParams{Value: deployment(ns, "web", container("app", "app:1"), container("proxy", "proxy:1"))})
		got := mustRun(t, "patch", ns, &patchParams{
			Value: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web"}},
			Patch: map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []any{container("app", "app:2")},
			}}}},
		})
		cs := get(t, got, "result", "spec", "template", "spec", "containers").([]any)
		images := map[string]any{}
		for _, c := range cs {
			images[c.(map[string]any)["name"].(string)] = c.(map[string]any)["image"]
		}
		if len(images) != 2 || images["app"] != "app:2" || images["proxy"] != "proxy:1" {
			t.Errorf("containers after a strategic patch: %v (a JSON merge patch would have dropped proxy)", images)
		}
	})
	t.Run("ConfigMap", func(t *testing.T) {
		mustRun(t, "apply", ns, &applyParams{Value: configMap("", "cm", map[string]any{"a": "1", "b": "2"})})
		got := mustRun(t, "patch", ns, &patchParams{
			Value: configMap("", "cm", nil),
			Patch: map[string]any{"data": map[string]any{"b": nil, "c": "3"}},
		})
		if data := get(t, got, "result", "data").(map[string]any); len(data) != 2 || data["a"] != "1" || data["c"] != "3" {
			t.Errorf("data = %v", data)
		}
	})
	t.Run("JSON merge for a custom resource", func(t *testing.T) {
		widget := map[string]any{"apiVersion": "test.stepflow.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w"}, "spec": map[string]any{"parts": []any{"a", "b"}, "size": 1}}
		mustRun(t, "apply", ns, &applyParams{Value: widget})
		got := mustRun(t, "patch", ns, &patchParams{
			Value: map[string]any{"apiVersion": "test.stepflow.dev/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}},
			Patch: map[string]any{"spec": map[string]any{"parts": []any{"c"}}},
		})
		spec := get(t, got, "result", "spec").(map[string]any)
		if fmt.Sprint(spec["parts"]) != "[c]" || spec["size"] != int64(1) {
			t.Errorf("spec = %v", spec)
		}
	})
	t.Run("missing object", func(t *testing.T) {
		_, err := run(context.Background(), "patch", ns, &patchParams{Value: configMap("", "missing", nil), Patch: map[string]any{}})
		if err == nil || op.IsPermanent(err) || !apierrors.IsNotFound(err) {
			t.Errorf("want a retryable not-found error, got %v", err)
		}
	})
}

// TestRequestsPerOp checks that each op is one API request once the client
// knows the kind (discovery is cached per group version).
func TestRequestsPerOp(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	cmList := &listParams{Filter: &filter{Namespace: ns}}
	cmList.Resource.APIVersion, cmList.Resource.Kind = "v1", "ConfigMap"
	steps := []struct {
		name   string
		do     string
		params any
	}{
		{"apply creates", "apply", &applyParams{Value: configMap("", "counted", map[string]any{"a": "1"})}},
		{"apply updates", "apply", &applyParams{Value: configMap("", "counted", map[string]any{"a": "2"})}},
		{"apply unchanged", "apply", &applyParams{Value: configMap("", "counted", map[string]any{"a": "2"})}},
		{"read", "read", &readParams{Value: configMap("", "counted", nil)}},
		{"read missing", "read", &readParams{Value: configMap("", "absent", nil)}},
		{"list", "list", cmList},
		{"patch", "patch", &patchParams{Value: configMap("", "counted", nil), Patch: map[string]any{"data": map[string]any{"b": "1"}}}},
		{"delete", "delete", &deleteParams{Value: configMap("", "counted", nil)}},
		{"delete by filter", "delete", &deleteParams{Value: configMap("", "", nil), Filter: &filter{MatchingLabels: map[string]string{"x": "y"}}}},
	}
	// Warm the client's RESTMapper for core/v1.
	mustRun(t, "read", ns, &readParams{Value: configMap("", "warm-up", nil)})
	for _, s := range steps {
		var err error
		n := countRequests(func() { _, err = run(ctx, s.do, ns, s.params) })
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n != 1 {
			t.Errorf("%s made %d API requests, want 1", s.name, n)
		}
	}
}

func TestInvalidParams(t *testing.T) {
	ns := newNamespace(t)
	noKind := map[string]any{"apiVersion": "v1", "metadata": map[string]any{"name": "x"}}
	noVersion := map[string]any{"kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}
	noName := map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}
	unknownKind := map[string]any{"apiVersion": "nope.example.com/v1", "kind": "Nothing", "metadata": map[string]any{"name": "x"}}
	badVersion := map[string]any{"apiVersion": "a/b/c", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}
	var unknownList listParams
	unknownList.Resource.APIVersion, unknownList.Resource.Kind = "v1", "Nothing"

	for _, tc := range []struct {
		name, do string
		params   any
		want     string
	}{
		{"apply without kind", "apply", &applyParams{Value: noKind}, "kind is required"},
		{"apply without apiVersion", "apply", &applyParams{Value: noVersion}, "apiVersion is required"},
		{"apply without name", "apply", &applyParams{Value: noName}, "name is required"},
		{"apply without value", "apply", &applyParams{}, "value is required"},
		{"apply of an unknown kind", "apply", &applyParams{Value: unknownKind}, "no matches for kind"},
		{"apply with a bad apiVersion", "apply", &applyParams{Value: badVersion}, "apiVersion"},
		{"apply rejected as invalid", "apply", &applyParams{Value: configMap("", "Not_A_Name", nil)}, "Invalid"},
		{"read without name", "read", &readParams{Value: noName}, "name is required"},
		{"read of an unknown kind", "read", &readParams{Value: unknownKind}, "no matches for kind"},
		{"list of an unknown kind", "list", &unknownList, "no matches for kind"},
		{"list without resource", "list", &listParams{}, "resource.apiVersion is required"},
		{"patch without patch", "patch", &patchParams{Value: configMap("", "x", nil)}, "patch is required"},
		{"patch of an unknown kind", "patch", &patchParams{Value: unknownKind, Patch: map[string]any{}}, "no matches for kind"},
		{"delete without kind", "delete", &deleteParams{Value: noKind}, "kind is required"},
		{"delete of an unknown kind", "delete", &deleteParams{Value: unknownKind}, "no matches for kind"},
		{"wrong params type", "read", &applyParams{}, "want *kube.readParams"},
		{"unknown cluster", "read", &readParams{Cluster: "elsewhere", Value: configMap("", "x", nil)}, `unknown cluster "elsewhere"`},
		{"unknown cluster in apply", "apply", &applyParams{Cluster: "elsewhere", Value: configMap("", "x", nil)}, `unknown cluster "elsewhere"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(context.Background(), tc.do, ns, tc.params)
			if err == nil {
				t.Fatal("the call succeeded")
			}
			var e *op.Error
			if !errors.As(err, &e) || !e.Permanent {
				t.Errorf("want a permanent *op.Error, got %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestLocalClusters(t *testing.T) {
	clusters := Local(opClient)
	step := op.Step{Namespace: "tenant-a", ServiceAccount: "deployer"}
	for _, name := range []string{"", LocalCluster} {
		if c, err := clusters.Cluster(context.Background(), step, name); err != nil || c != opClient {
			t.Errorf("Cluster(%q) = %v, %v", name, c, err)
		}
	}
	_, err := clusters.Cluster(context.Background(), step, "x")
	if !op.IsPermanent(err) || err.Error() != `unknown cluster "x"` {
		t.Errorf("Cluster(x) error = %v", err)
	}
}

// LocalAs hands each step the client of its own identity.
func TestLocalAsActsAsTheStep(t *testing.T) {
	var asked []op.Step
	clusters := LocalAs(func(_ context.Context, s op.Step) (client.Client, error) {
		asked = append(asked, s)
		return opClient, nil
	})
	for _, tc := range []struct {
		step    op.Step
		cluster string
		ok      bool
	}{
		{op.Step{Namespace: "tenant-a", ServiceAccount: "deployer"}, "", true},
		{op.Step{Namespace: "tenant-b"}, LocalCluster, true},
		{op.Step{Namespace: "tenant-a"}, "elsewhere", false},
	} {
		asked = nil
		_, err := clusters.Cluster(context.Background(), tc.step, tc.cluster)
		if tc.ok != (err == nil) {
			t.Errorf("%+v on %q: error %v", tc.step, tc.cluster, err)
		}
		if tc.ok && (len(asked) != 1 || asked[0] != tc.step) {
			t.Errorf("%+v on %q: asked for %+v", tc.step, tc.cluster, asked)
		}
		if !tc.ok && len(asked) != 0 {
			t.Errorf("an unknown cluster asked for a client: %+v", asked)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	ns := newNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cmList := &listParams{}
	cmList.Resource.APIVersion, cmList.Resource.Kind = "v1", "ConfigMap"
	for do, params := range map[string]any{
		"apply":             &applyParams{Value: configMap("", "x", nil)},
		"apply-in-parallel": &applyInParallelParams{Value: []map[string]any{configMap("", "x", nil)}},
		"read":              &readParams{Value: configMap("", "x", nil)},
		"list":              cmList,
		"patch":             &patchParams{Value: configMap("", "x", nil), Patch: map[string]any{}},
		"delete":            &deleteParams{Value: configMap("", "x", nil)},
	} {
		// Call Run directly: op.Direct would stop the call before the op sees it.
		o := New(Local(opClient)).Ops()[do]
		n := countRequests(func() {
			_, err := o.Run(ctx, &op.Call{Name: op.Name{Provider: "kube", Do: do}, Path: do, Op: o, Params: params,
				Step: op.Step{Namespace: ns, StepID: "s"}})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: error %v does not wrap context.Canceled", do, err)
			}
		})
		if n != 0 {
			t.Errorf("%s made %d requests with a cancelled context", do, n)
		}
	}
}

func TestSecrets(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tls"},
		Data: map[string][]byte{"ca.crt": []byte("pem"), "token": {0, 1, 2}}}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	secrets := Secrets(Local(opClient))
	step := op.Step{Namespace: ns, StepName: "s"}
	data, err := secrets.GetSecret(ctx, step, ns, "tls")
	if err != nil {
		t.Fatal(err)
	}
	if string(data["ca.crt"]) != "pem" || string(data["token"]) != "\x00\x01\x02" || len(data) != 2 {
		t.Errorf("data = %q", data)
	}
	if _, err := secrets.GetSecret(ctx, step, ns, "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing secret: want a not-found error, got %v", err)
	}
}

// observed records what a family reports to its Observer.
type observed struct {
	mu   sync.Mutex
	seen []string
}

func (o *observed) Observe(_ op.Step, cluster string, gvk schema.GroupVersionKind, namespace, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, gvk.Kind+" "+namespace+"/"+name)
}

func TestApplyInOrder(t *testing.T) {
	ns := newNamespace(t)
	obs := &observed{}
	f := New(Local(opClient)).WithObserver(obs)
	call := func(values []map[string]any) (op.Result, error) {
		o := f.Ops()["apply-in-order"]
		p := &applyInParallelParams{Value: values}
		return op.Direct.Run(context.Background(), &op.Call{
			Name: op.Name{Provider: "kube", Do: "apply-in-order"}, Path: "test.apply", Op: o, Params: p,
			Class: o.Class(p), Step: op.Step{RunUID: "uid", RunName: "run", Namespace: ns, StepName: "step", StepID: "step-1"},
		})
	}
	values := []map[string]any{configMap("", "first", nil), configMap("", "second", nil), configMap("", "third", nil)}
	res, err := call(values)
	if err != nil {
		t.Fatal(err)
	}
	list := res.Returns.(map[string]any)["value"].([]any)
	for i, name := range []string{"first", "second", "third"} {
		if got := get(t, list[i].(map[string]any), "metadata", "name"); got != name {
			t.Errorf("value[%d] is %v, want %s", i, got, name)
		}
	}
	if want := []string{"ConfigMap " + ns + "/first", "ConfigMap " + ns + "/second", "ConfigMap " + ns + "/third"}; !reflect.DeepEqual(obs.seen, want) {
		t.Errorf("observed %v, want %v: a wait on these objects would not be woken", obs.seen, want)
	}

	// The API server refuses the second (its namespace does not exist): the
	// first stays applied, the third is never sent, and the error names
	// the refused object and how far the chain got.
	chain := []map[string]any{configMap("", "before", nil), configMap("no-such-namespace-x", "refused", nil), configMap("", "after", nil)}
	_, err = call(chain)
	if err == nil || !strings.Contains(err.Error(), "value[1] (after 1 of 3 applied)") {
		t.Fatalf("want an error naming value[1] after 1 of 3 applied, got %v", err)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "before"}, &cm); err != nil {
		t.Errorf("the object before the refusal: %v", err)
	}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "after"}, &cm); !apierrors.IsNotFound(err) {
		t.Errorf("the object after the refusal was applied (err %v): the chain did not stop", err)
	}
}

func TestApplyInParallelReportsWhatItApplied(t *testing.T) {
	ns := newNamespace(t)
	obs := &observed{}
	f := New(Local(opClient)).WithObserver(obs)
	o := f.Ops()["apply-in-parallel"]
	p := &applyInParallelParams{Value: []map[string]any{configMap("", "a", nil), configMap("", "b", nil)}}
	if _, err := op.Direct.Run(context.Background(), &op.Call{
		Name: op.Name{Provider: "kube", Do: "apply-in-parallel"}, Path: "test.apply", Op: o, Params: p,
		Class: o.Class(p), Step: op.Step{RunUID: "uid", RunName: "run", Namespace: ns, StepName: "step", StepID: "step-1"},
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(obs.seen)
	if want := []string{"ConfigMap " + ns + "/a", "ConfigMap " + ns + "/b"}; !reflect.DeepEqual(obs.seen, want) {
		t.Errorf("observed %v, want %v: a wait on these objects would not be woken", obs.seen, want)
	}
}
