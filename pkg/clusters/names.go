package clusters

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Names lists the named clusters, sorted: the names of the cluster Secrets
// (those with CredentialTypeLabel) of the system namespace, as KubeVela's
// multicluster.#ListClusters does; the local cluster is not among them.
// The list is made through the reader Options.Secrets gives for step,
// asking for metadata only, so the Secrets' data never reaches the
// controller: a step sees the clusters only if its identity may list
// Secrets in the system namespace, and a denial is the tenancy's permanent
// one.
func (r *Registry) Names(ctx context.Context, step op.Step) ([]string, error) {
	secrets, err := r.o.Secrets(ctx, step)
	if err != nil {
		return nil, err
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := secrets.List(ctx, list, client.InNamespace(r.o.SystemNamespace), client.HasLabels{CredentialTypeLabel}); err != nil {
		if op.IsPermanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("listing the cluster Secrets of %s: %w", r.o.SystemNamespace, err)
	}
	names := make([]string, 0, len(list.Items))
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names, nil
}
