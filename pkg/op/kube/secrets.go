package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// SecretReader reads Secrets from the local cluster, for op families that
// take credentials from them (TLS material, request headers), as the
// identity of the step that needs them.
type SecretReader struct {
	clusters Clusters
}

// Secrets returns a SecretReader over the local cluster of clusters.
func Secrets(clusters Clusters) *SecretReader { return &SecretReader{clusters: clusters} }

// GetSecret returns the data of Secret namespace/name, read as step's
// identity: one GET. The error of a missing Secret satisfies
// apierrors.IsNotFound; a Secret the identity may not read is a permanent
// error naming it.
func (r *SecretReader) GetSecret(ctx context.Context, step op.Step, namespace, name string) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if namespace == "" || name == "" {
		return nil, fmt.Errorf("secret %q in namespace %q: both a namespace and a name are required", name, namespace)
	}
	c, err := clusterFor(ctx, r.clusters, step, "")
	if err != nil {
		return nil, err
	}
	// Read it unstructured so the client's scheme need not know core/v1.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}
