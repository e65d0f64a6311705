package main

import (
	"context"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	named "github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/op"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
)

// buildOps wires every op family. The cluster client is made on first use,
// so commands that never touch a cluster need no kubeconfig. Ops act as the
// kubeconfig's user; `cluster: NAME` reaches the clusters joined with
// `stepflow cluster join` (Secrets of the default system namespace), with
// their Secret's credentials.
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
	var clusters kube.Clusters = kube.Local(nil)
	lazy := kube.ClustersFunc(func(ctx context.Context, step op.Step, name string) (client.Client, error) {
		once.Do(func() {
			var cfg *rest.Config
			if cfg, connErr = restConfig(); connErr != nil {
				connErr = op.Permanent(connErr)
				return
			}
			if c, connErr = client.New(cfg, client.Options{Scheme: scheme}); connErr != nil {
				return
			}
			clusters, connErr = named.New(named.Options{
				SystemNamespace: definition.DefaultSystemNamespace, Local: kube.Local(c), SingleTenant: true,
				Secrets: func(context.Context, op.Step) (client.Reader, error) { return c, nil },
				Scheme:  scheme,
			})
		})
		if connErr != nil {
			return nil, connErr
		}
		return clusters.Cluster(ctx, step, name)
	})
	return opset.Standard(lazy, nil, httpop.Options{}), nil
}
