package controller

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// watches records what the waker asked to watch.
type watches []string

func (w *watches) Watch(gvk schema.GroupVersionKind, ns string) error {
	*w = append(*w, gvk.Kind+" "+ns)
	return nil
}

// The waker asks its Watcher for a watch of what each step looks at, maps
// the watcher's events to the runs that looked, and tells the ops' reader
// which watches a run still waits on.
func TestWakerMapsEventsToRuns(t *testing.T) {
	cm := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	ns := schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
	step := func(run string) op.Step { return op.Step{Namespace: "tenant", RunName: run} }
	obj := func(gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace(namespace)
		u.SetName(name)
		return u
	}

	w := NewWaker()
	var seen watches
	w.WatchWith(&seen)
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	w.bind(q, func(err error) { t.Error(err) })

	w.Observe(step("reads-a"), "", cm, "tenant", "a")
	w.Observe(step("lists"), "local", cm, "tenant", "")
	w.Observe(step("remote"), "other", cm, "tenant", "a")
	w.Observe(step("ns"), "", ns, "", "tenant")
	if diff := cmp.Diff(watches{"ConfigMap tenant", "ConfigMap tenant", "Namespace "}, seen); diff != "" {
		t.Errorf("watches asked for (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		event *unstructured.Unstructured
		want  []string
	}{
		{obj(cm, "tenant", "a"), []string{"lists", "reads-a"}},
		{obj(cm, "tenant", "b"), []string{"lists"}},
		{obj(cm, "elsewhere", "a"), nil},
		{obj(ns, "", "tenant"), []string{"ns"}},
	} {
		w.Notify(tc.event)
		var got []string
		for q.Len() > 0 {
			req, _ := q.Get()
			got = append(got, req.Name)
			q.Done(req)
			q.Forget(req)
		}
		slices.Sort(got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("runs woken by %s %s/%s (-want +got):\n%s", tc.event.GetKind(), tc.event.GetNamespace(), tc.event.GetName(), diff)
		}
	}

	for _, tc := range []struct {
		gvk  schema.GroupVersionKind
		ns   string
		want bool
	}{{cm, "tenant", true}, {cm, "elsewhere", false}, {ns, "", true}} {
		if got := w.Waits(tc.gvk, tc.ns); got != tc.want {
			t.Errorf("Waits(%s, %q) = %v, want %v", tc.gvk.Kind, tc.ns, got, tc.want)
		}
	}
	for _, run := range []string{"reads-a", "lists", "remote"} {
		w.forget(types.NamespacedName{Namespace: "tenant", Name: run})
	}
	if w.Waits(cm, "tenant") {
		t.Error("Waits after every run that looked was forgotten")
	}
}

// remoteWatches records what the waker asked to watch on named clusters.
type remoteWatches []string

func (w *remoteWatches) Watch(cluster string, gvk schema.GroupVersionKind, ns string) error {
	*w = append(*w, cluster+" "+gvk.Kind+" "+ns)
	return nil
}

// Objects of named clusters are watched through the RemoteWatcher, and an
// event wakes only the runs that looked at that object on that cluster.
func TestWakerKeysByCluster(t *testing.T) {
	cm := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	step := func(run string) op.Step { return op.Step{Namespace: "tenant", RunName: run} }
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(cm)
	obj.SetNamespace("tenant")
	obj.SetName("a")

	w := NewWaker()
	var local watches
	var remote remoteWatches
	w.WatchWith(&local)
	w.WatchRemoteWith(&remote)
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	w.bind(q, func(err error) { t.Error(err) })

	w.Observe(step("home"), "local", cm, "tenant", "a")
	w.Observe(step("on-edge"), "edge", cm, "tenant", "a")
	w.Observe(step("lists-edge"), "edge", cm, "tenant", "")
	w.Observe(step("on-other"), "other", cm, "tenant", "a")
	if diff := cmp.Diff(watches{"ConfigMap tenant"}, local); diff != "" {
		t.Errorf("local watches (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(remoteWatches{"edge ConfigMap tenant", "edge ConfigMap tenant", "other ConfigMap tenant"}, remote); diff != "" {
		t.Errorf("remote watches (-want +got):\n%s", diff)
	}

	woken := func(notify func()) []string {
		notify()
		var got []string
		for q.Len() > 0 {
			req, _ := q.Get()
			got = append(got, req.Name)
			q.Done(req)
			q.Forget(req)
		}
		slices.Sort(got)
		return got
	}
	for _, tc := range []struct {
		cluster string
		want    []string
	}{
		{"", []string{"home"}},
		{"edge", []string{"lists-edge", "on-edge"}},
		{"other", []string{"on-other"}},
		{"nowhere", nil},
	} {
		got := woken(func() { w.NotifyIn(tc.cluster, obj) })
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("runs woken by ConfigMap tenant/a on cluster %q (-want +got):\n%s", tc.cluster, diff)
		}
	}
	if got := woken(func() { w.Notify(obj) }); !slices.Equal(got, []string{"home"}) {
		t.Errorf("Notify woke %v, want only the local run", got)
	}
	for _, tc := range []struct {
		cluster string
		want    bool
	}{{"", true}, {"edge", true}, {"other", true}, {"nowhere", false}} {
		if got := w.WaitsIn(tc.cluster, cm, "tenant"); got != tc.want {
			t.Errorf("WaitsIn(%q, ConfigMap, tenant) = %v, want %v", tc.cluster, got, tc.want)
		}
	}
	w.forget(types.NamespacedName{Namespace: "tenant", Name: "on-edge"})
	w.forget(types.NamespacedName{Namespace: "tenant", Name: "lists-edge"})
	if w.WaitsIn("edge", cm, "tenant") || !w.Waits(cm, "tenant") {
		t.Error("after the edge runs were forgotten: want no wait on edge, the local one kept")
	}
}
