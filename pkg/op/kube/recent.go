package kube

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// recentWrites gives reads through an informer cache their own writes: an
// object this family applied a moment ago is returned as the apply
// returned it while the cache has not caught up with it yet (missing, or an
// older resourceVersion). Without it a step that reads what the step before
// it applied would wait for the watch event, costing a tick.
type recentWrites struct {
	mu  sync.Mutex
	m   map[recentKey]recentObj
	ttl time.Duration
	max int
	now func() time.Time
}

type recentKey struct {
	cluster   string
	gvk       schema.GroupVersionKind
	namespace string
	name      string
}

type recentObj struct {
	obj map[string]any
	rv  uint64
	at  time.Time
}

func newRecentWrites() *recentWrites {
	return &recentWrites{m: map[recentKey]recentObj{}, ttl: 30 * time.Second, max: 4096, now: time.Now}
}

func rvOf(u *unstructured.Unstructured) uint64 {
	rv, _ := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
	return rv
}

func keyOf(cluster string, u *unstructured.Unstructured) recentKey {
	return recentKey{cluster: cluster, gvk: u.GroupVersionKind(), namespace: u.GetNamespace(), name: u.GetName()}
}

// wrote remembers an object as the API server returned it from a write.
func (r *recentWrites) wrote(cluster string, u *unstructured.Unstructured) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= r.max {
		for k, v := range r.m {
			if now.Sub(v.at) > r.ttl {
				delete(r.m, k)
			}
		}
		if len(r.m) >= r.max {
			r.m = map[recentKey]recentObj{}
		}
	}
	r.m[keyOf(cluster, u)] = recentObj{obj: u.DeepCopy().Object, rv: rvOf(u), at: now}
}

// deleted forgets an object.
func (r *recentWrites) deleted(cluster string, u *unstructured.Unstructured) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, keyOf(cluster, u))
}

// deletedAll forgets every object of gvk in namespace: a delete by filter
// may have removed any of them.
func (r *recentWrites) deletedAll(cluster string, gvk schema.GroupVersionKind, namespace string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.m {
		if k.cluster == cluster && k.gvk == gvk && k.namespace == namespace {
			delete(r.m, k)
		}
	}
}

// newer returns the remembered object if it is newer than what a read
// found (got nil: the read found nothing).
func (r *recentWrites) newer(cluster string, want, got *unstructured.Unstructured) (map[string]any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := keyOf(cluster, want)
	w, ok := r.m[k]
	if !ok {
		return nil, false
	}
	if r.now().Sub(w.at) > r.ttl || (got != nil && rvOf(got) >= w.rv) {
		delete(r.m, k)
		return nil, false
	}
	return (&unstructured.Unstructured{Object: w.obj}).DeepCopy().Object, true
}
