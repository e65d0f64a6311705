package transform

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func run(t *testing.T, do string, params any) (op.Result, error) {
	t.Helper()
	o := New().Ops()[do]
	call := &op.Call{Name: op.Name{Provider: "util", Do: do}, Path: "test." + do, Op: o, Params: params, Class: o.Class(params)}
	return op.Direct.Run(context.Background(), call)
}

func TestConvertString(t *testing.T) {
	for _, tc := range []struct {
		name string
		bt   []byte
		want string
	}{
		{"ascii", []byte("hello"), "hello"},
		{"utf-8", []byte("grüße"), "grüße"},
		{"empty", []byte{}, ""},
		{"nil", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, "string", &stringParams{Bt: tc.bt})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]any{"str": tc.want}, res.Returns); diff != "" {
				t.Errorf("returns (-want +got):\n%s", diff)
			}
		})
	}
}

func deployment(containers ...any) map[string]any {
	return map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"replicas": int64(1),
			"template": map[string]any{"spec": map[string]any{"containers": containers}},
		},
	}
}

func container(name, image string) map[string]any {
	return map[string]any{"name": name, "image": image}
}

func TestPatchK8sObject(t *testing.T) {
	for _, tc := range []struct {
		name         string
		value, patch map[string]any
		want         map[string]any
	}{{
		name:  "strategic: containers merge by name",
		value: deployment(container("app", "app:1"), container("sidecar", "proxy:1")),
		patch: map[string]any{"spec": map[string]any{
			"replicas": 3, // an int built in Go is accepted
			"template": map[string]any{"spec": map[string]any{"containers": []any{container("app", "app:2")}}},
		}},
		want: func() map[string]any {
			d := deployment(container("app", "app:2"), container("sidecar", "proxy:1"))
			d["spec"].(map[string]any)["replicas"] = int64(3)
			return d
		}(),
	}, {
		name:  "strategic: $patch delete removes a list entry",
		value: deployment(container("app", "app:1"), container("sidecar", "proxy:1")),
		patch: map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "sidecar", "$patch": "delete"}},
		}}}},
		want: deployment(container("app", "app:1")),
	}, {
		name:  "strategic: null removes a field",
		value: deployment(container("app", "app:1")),
		patch: map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": nil}}},
		want: func() map[string]any {
			d := deployment(container("app", "app:1"))
			d["metadata"].(map[string]any)["labels"] = map[string]any{}
			return d
		}(),
	}, {
		name: "merge: custom kind replaces lists",
		value: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
			"spec": map[string]any{"items": []any{"a", "b"}, "size": int64(1)}},
		patch: map[string]any{"spec": map[string]any{"items": []any{"c"}, "color": "red"}},
		want: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
			"spec": map[string]any{"items": []any{"c"}, "size": int64(1), "color": "red"}},
	}, {
		name:  "merge: null removes, nested objects merge",
		value: map[string]any{"kind": "Thing", "a": map[string]any{"b": int64(1), "c": int64(2)}, "d": "x"},
		patch: map[string]any{"a": map[string]any{"b": nil, "e": map[string]any{"f": nil, "g": true}}, "d": nil},
		want:  map[string]any{"kind": "Thing", "a": map[string]any{"c": int64(2), "e": map[string]any{"g": true}}},
	}, {
		name:  "no patch",
		value: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "v"}},
		want:  map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "v"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := JSONObject(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			res, err := run(t, "patch-k8s-object", &patchParams{Value: tc.value, Patch: tc.patch})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]any{"result": tc.want}, res.Returns); diff != "" {
				t.Errorf("returns (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.value); diff != "" {
				t.Errorf("the op changed its params (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPatchK8sObjectInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params any
	}{
		{"no value", &patchParams{Patch: map[string]any{"a": "b"}}},
		{"bad strategic patch", &patchParams{
			Value: deployment(container("app", "app:1")),
			Patch: map[string]any{"spec": map[string]any{"$patch": "bogus"}},
		}},
		{"value Go cannot express as JSON", &patchParams{Value: map[string]any{"f": func() {}}}},
		{"wrong params type", &stringParams{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, "patch-k8s-object", tc.params)
			if err == nil || !op.IsPermanent(err) {
				t.Fatalf("want a permanent error, got %v", err)
			}
		})
	}
}

func TestMergePatch(t *testing.T) {
	for _, tc := range []struct {
		name             string
		doc, patch, want map[string]any
	}{
		// The examples of RFC 7386, appendix A, that have objects at the top.
		{"replace", map[string]any{"a": "b"}, map[string]any{"a": "c"}, map[string]any{"a": "c"}},
		{"add", map[string]any{"a": "b"}, map[string]any{"b": "c"}, map[string]any{"a": "b", "b": "c"}},
		{"remove", map[string]any{"a": "b"}, map[string]any{"a": nil}, map[string]any{}},
		{"remove one of two", map[string]any{"a": "b", "b": "c"}, map[string]any{"a": nil}, map[string]any{"b": "c"}},
		{"list replaces", map[string]any{"a": []any{"b"}}, map[string]any{"a": "c"}, map[string]any{"a": "c"}},
		{"value becomes list", map[string]any{"a": "c"}, map[string]any{"a": []any{"b"}}, map[string]any{"a": []any{"b"}}},
		{"nested", map[string]any{"a": map[string]any{"b": "c"}},
			map[string]any{"a": map[string]any{"b": "d", "c": nil}}, map[string]any{"a": map[string]any{"b": "d"}}},
		{"object replaces scalar", map[string]any{"a": "b"}, map[string]any{"a": map[string]any{"c": nil, "d": "e"}},
			map[string]any{"a": map[string]any{"d": "e"}}},
		{"nil doc", nil, map[string]any{"a": "b"}, map[string]any{"a": "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, MergePatch(tc.doc, tc.patch)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONObject(t *testing.T) {
	type name string
	in := map[string]any{
		"int": 1, "int32": int32(2), "uint8": uint8(3), "float32": float32(0.5), "named": name("n"),
		"labels": map[string]string{"a": "b"}, "strings": []string{"x"}, "bytes": []byte("hi"),
		"nested": []any{map[string]any{"n": nil}}, "ptr": new(int),
	}
	want := map[string]any{
		"int": int64(1), "int32": int64(2), "uint8": int64(3), "float32": float64(0.5), "named": "n",
		"labels": map[string]any{"a": "b"}, "strings": []any{"x"}, "bytes": "aGk=",
		"nested": []any{map[string]any{"n": nil}}, "ptr": int64(0),
	}
	got, err := JSONObject(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := JSONObject(map[string]any{"m": map[int]string{1: "a"}}); err == nil {
		t.Error("a map with int keys must be rejected")
	}
	if _, err := JSONObject(map[string]any{"u": uint64(1 << 63)}); err == nil {
		t.Error("a uint64 above MaxInt64 must be rejected")
	}
}

func TestConformance(t *testing.T) {
	optest.Run(t, optest.Suite{
		New: func() op.Family { return New() },
		Cases: []optest.Case{
			{Name: "string", Do: "string", Params: func() any { return &stringParams{Bt: []byte("x")} }},
			{Name: "patch", Do: "patch-k8s-object", Params: func() any {
				return &patchParams{Value: deployment(container("a", "a:1")),
					Patch: map[string]any{"spec": map[string]any{"replicas": 2}}}
			}},
			{Name: "patch without value", Do: "patch-k8s-object", Invalid: true,
				Params: func() any { return &patchParams{} }},
		},
	})
}
