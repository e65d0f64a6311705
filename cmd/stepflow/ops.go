package main

import (
	"context"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/pkg/op"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
)

// buildOps wires every op family. The cluster client is made on first use,
// so commands that never touch a cluster need no kubeconfig.
func buildOps(restConfig func() (*rest.Config, error)) (*op.Registry, error) {
	scheme, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	var (
		once    sync.Once
		c       client.Client
		connErr error
	)
	clusters := kube.Local(nil)
	lazy := kube.ClustersFunc(func(ctx context.Context, step op.Step, name string) (client.Client, error) {
		once.Do(func() {
			var cfg *rest.Config
			if cfg, connErr = restConfig(); connErr != nil {
				connErr = op.Permanent(connErr)
				return
			}
			c, connErr = client.New(cfg, client.Options{Scheme: scheme})
			if connErr == nil {
				clusters = kube.Local(c)
			}
		})
		if connErr != nil {
			return nil, connErr
		}
		return clusters.Cluster(ctx, step, name)
	})
	return opset.Standard(lazy, nil, httpop.Options{}), nil
}
