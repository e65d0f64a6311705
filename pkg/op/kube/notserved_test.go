package kube

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Which errors mean the API server does not serve a kind, and the message
// they become.
func TestKindNotServed(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "stale.stepflow.dev", Version: "v1", Kind: "Gizmo"}
	gr := schema.GroupResource{Group: gvk.Group, Resource: "gizmos"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no match from the RESTMapper", &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{"v1"}}, true},
		{"wrapped no match", fmt.Errorf("failed to get restmapping: %w", &meta.NoKindMatchError{GroupKind: gvk.GroupKind()}), true},
		{"bare 404 of a path not served", apierrors.NewGenericServerResponse(404, "GET", gr, "g", "404 page not found", 0, true), true},
		{"missing object", apierrors.NewNotFound(gr, "g"), false},
		{"forbidden", apierrors.NewForbidden(gr, "g", errors.New("no")), false},
		{"other", errors.New("connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kindNotServed(tc.err); got != tc.want {
				t.Fatalf("kindNotServed = %v, want %v", got, tc.want)
			}
			err := apiError(gvk, tc.err, "read %s", "g")
			if !tc.want {
				if strings.Contains(err.Error(), "CRD installed") {
					t.Errorf("apiError says the kind is not served: %v", err)
				}
				return
			}
			want := `no kind "Gizmo" in group "stale.stepflow.dev" (version "v1"): is its CRD installed?`
			if !op.IsPermanent(err) || !strings.Contains(err.Error(), want) {
				t.Errorf("apiError = %v (permanent %v), want permanent with %q", err, op.IsPermanent(err), want)
			}
		})
	}
}
