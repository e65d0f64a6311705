package kube

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// filter is the filter of list and delete.
type filter struct {
	Namespace      string            `json:"namespace,omitempty"`
	MatchingLabels map[string]string `json:"matchingLabels,omitempty"`
}

// objectOf turns a decoded value into an object, checking that it names an
// apiVersion and a kind, and a name when needName is set. The object is a
// copy: changing it leaves value alone.
func objectOf(value map[string]any, needName bool) (*unstructured.Unstructured, error) {
	if value == nil {
		return nil, op.Permanentf("value is required")
	}
	m, err := transform.JSONObject(value)
	if err != nil {
		return nil, op.Permanentf("value: %w", err)
	}
	return checkObject(&unstructured.Unstructured{Object: m}, needName)
}

func checkObject(obj *unstructured.Unstructured, needName bool) (*unstructured.Unstructured, error) {
	if err := checkType(obj.GetAPIVersion(), obj.GetKind(), "value."); err != nil {
		return nil, err
	}
	if needName && obj.GetName() == "" {
		return nil, op.Permanentf("value.metadata.name is required (%s)", obj.GetKind())
	}
	return obj, nil
}

// checkType checks an apiVersion and kind; prefix says where they came from.
func checkType(apiVersion, kind, prefix string) error {
	if apiVersion == "" {
		return op.Permanentf("%sapiVersion is required", prefix)
	}
	if _, err := schema.ParseGroupVersion(apiVersion); err != nil {
		return op.Permanentf("%sapiVersion: %w", prefix, err)
	}
	if kind == "" {
		return op.Permanentf("%skind is required", prefix)
	}
	return nil
}

// serverFields are the metadata fields the API server owns. An object read
// back from a cluster (as the flat dialect feeds $returns.value back into
// value) carries them; applying them would fail or pin a stale version.
var serverFields = []string{
	"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
}

// stripServerFields removes the server-owned metadata and the status.
func stripServerFields(obj *unstructured.Unstructured) {
	for _, f := range serverFields {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(obj.Object, "status")
}

// defaultNamespace puts a namespaced object without a namespace into ns. It
// asks the client's RESTMapper, which reports a kind the cluster does not
// serve.
func defaultNamespace(c client.Client, obj *unstructured.Unstructured, ns string) error {
	namespaced, err := c.IsObjectNamespaced(obj)
	if err != nil {
		return apiError(obj.GroupVersionKind(), err, "%s", describe(obj))
	}
	if !namespaced || obj.GetNamespace() != "" {
		return nil
	}
	if ns == "" {
		return op.Permanentf("%s: value.metadata.namespace is required: the kind is namespaced and the step has no namespace", describe(obj))
	}
	obj.SetNamespace(ns)
	return nil
}

// describe names an object in messages: "apps/v1 Deployment ns/name".
func describe(obj *unstructured.Unstructured) string {
	s := obj.GetAPIVersion() + " " + obj.GetKind()
	switch {
	case obj.GetName() == "":
	case obj.GetNamespace() == "":
		s += " " + obj.GetName()
	default:
		s += " " + obj.GetNamespace() + "/" + obj.GetName()
	}
	return s
}

// apiError wraps err with context and marks it permanent when sending the
// same request again cannot succeed: the kind (gvk) is not served (see
// kindNotServed), or the API server rejected the request itself.
// Everything else (unreachable, timeout, conflict, forbidden, not found)
// may pass.
func apiError(gvk schema.GroupVersionKind, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf(format+": %w", append(args, err)...)
	if kindNotServed(err) {
		return notServedError(gvk, wrapped)
	}
	switch {
	case apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err),
		apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err),
		apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err):
		return op.Permanent(wrapped)
	}
	return wrapped
}

// kindNotServed reports whether err says the API server does not serve a
// kind: the RESTMapper knows no such kind, or a request got the bare 404
// (not a Status naming a missing object) that the API server answers for
// a path it does not serve, as when the CRD was removed after the mapper
// learnt the kind.
func kindNotServed(err error) bool {
	if meta.IsNoMatchError(err) {
		return true
	}
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	if d := status.Status().Details; d != nil {
		for _, c := range d.Causes {
			if c.Type == metav1.CauseTypeUnexpectedServerResponse {
				return true
			}
		}
	}
	return false
}

// notServedError is the permanent error of a request for a kind the API
// server does not serve; err says which request.
func notServedError(gvk schema.GroupVersionKind, err error) error {
	group := fmt.Sprintf("group %q", gvk.Group)
	if gvk.Group == "" {
		group = "the core group"
	}
	return op.Permanentf("no kind %q in %s (version %q): is its CRD installed? (%w)", gvk.Kind, group, gvk.Version, err)
}
