package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// indexAppID indexes cached runs by their app id label, so GET
// /workflow?appId= reads the app's runs, not every run of the namespace.
const indexAppID = "stepflow.dev/app-id-label"

// NewCluster returns the connection the server reads and writes through:
// its client reads the objects of Stepflow's API (WorkflowRuns, step
// definitions) from a cache (without managedFields), runs indexed by app
// id, and ConfigMaps and Secrets from the API server, so no informer over
// every ConfigMap starts. The informers of runs, step and component
// definitions and Workflows are registered here, so once it is started, its cache's WaitForCacheSync
// means they are loaded: wait for it before serving.
func NewCluster(cfg *rest.Config) (cluster.Cluster, error) {
	s, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = s
		o.Cache.DefaultTransform = cache.TransformStripManagedFields()
		o.Client.Cache = &client.CacheOptions{
			DisableFor:   []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}},
			Unstructured: false,
		}
	})
	if err != nil {
		return nil, err
	}
	ctx := context.Background() // registering only: nothing waits before the cache starts
	if err := c.GetFieldIndexer().IndexField(ctx, &v1alpha1.WorkflowRun{}, indexAppID, func(o client.Object) []string {
		if v, ok := o.GetLabels()[app.LabelAppID]; ok {
			return []string{v}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("indexing workflowruns by app id: %w", err)
	}
	for what, obj := range map[string]client.Object{
		"workflowstepdefinitions": &v1beta1.WorkflowStepDefinition{},
		"componentdefinitions":    &v1beta1.ComponentDefinition{}, // the UI's catalogue
		"workflows":               &v1alpha1.Workflow{},
	} {
		if _, err := c.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("watching %s: %w", what, err)
		}
	}
	return c, nil
}
