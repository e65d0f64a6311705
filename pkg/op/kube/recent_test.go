package kube

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func cm(name, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("ns")
	u.SetName(name)
	u.SetResourceVersion(rv)
	return u
}

func TestRecentWritesGiveReadsTheirOwnWrites(t *testing.T) {
	now := time.Unix(0, 0)
	r := newRecentWrites()
	r.now = func() time.Time { return now }
	r.wrote("", cm("a", "10"))

	if _, ok := r.newer("", cm("a", ""), nil); !ok {
		t.Fatal("a read that finds nothing right after the write should get the written object")
	}
	if _, ok := r.newer("", cm("a", ""), cm("a", "9")); !ok {
		t.Fatal("a cached copy older than the write should lose to it")
	}
	if _, ok := r.newer("other", cm("a", ""), nil); ok {
		t.Fatal("another cluster's object must not match")
	}
	if _, ok := r.newer("", cm("a", ""), cm("a", "10")); ok {
		t.Fatal("once the cache has the write, the cache wins")
	}
	if _, ok := r.newer("", cm("a", ""), nil); ok {
		t.Fatal("the entry is dropped once the cache caught up")
	}
	r.wrote("", cm("b", "20"))
	now = now.Add(time.Minute)
	if _, ok := r.newer("", cm("b", ""), nil); ok {
		t.Fatal("an old write is forgotten after the ttl")
	}
	r.wrote("", cm("c", "30"))
	r.deleted("", cm("c", ""))
	if _, ok := r.newer("", cm("c", ""), nil); ok {
		t.Fatal("a deleted object is forgotten")
	}
}
