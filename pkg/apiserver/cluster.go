package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	"github.com/stepflow-dev/stepflow/api"
)

// NewCluster returns the connection the server reads and writes through:
// its client reads the objects of Stepflow's API (WorkflowRuns, step
// definitions) from a cache (without managedFields) and ConfigMaps and
// Secrets from the API server, so no informer over every ConfigMap
// starts. Start it, and wait for its
// cache, before serving.
func NewCluster(cfg *rest.Config) (cluster.Cluster, error) {
	s, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	return cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = s
		o.Cache.DefaultTransform = cache.TransformStripManagedFields()
		o.Client.Cache = &client.CacheOptions{
			DisableFor:   []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}},
			Unstructured: false,
		}
	})
}
