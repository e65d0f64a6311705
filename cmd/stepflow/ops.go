package main

import (
	"context"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api"
	named "github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/appop"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
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
	// Components render in-process, as the step does, with the
	// ComponentDefinitions of the cluster (the run namespace's, then the
	// system namespace's).
	renderer := &component.Deferred{}
	types := func(ctx context.Context, ns string) component.Definitions {
		return clusterComponents{ctx: ctx, ns: ns, clusters: lazy}
	}
	// App ops read the step's run as the kubeconfig's user too.
	own := lazyReader(func(ctx context.Context) (client.Reader, error) { return lazy.Cluster(ctx, op.Step{}, "") })
	reg := opset.Standard(lazy, nil, httpop.Options{}, component.New(component.Options{Types: types, Evaluator: renderer}),
		appop.New(own, lazy))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		return nil, err
	}
	renderer.Set(ev)
	return reg, nil
}

// clusterComponents finds ComponentDefinitions in the local cluster,
// connecting on first use.
type clusterComponents struct {
	ctx      context.Context
	ns       string
	clusters kube.Clusters
}

func (c clusterComponents) Lookup(name string) (eval.Definition, error) {
	cl, err := c.clusters.Cluster(c.ctx, op.Step{Namespace: c.ns}, "")
	if err != nil {
		return eval.Definition{}, err
	}
	return definition.Cluster{Reader: cl, SystemNamespace: definition.DefaultSystemNamespace}.ForKind(c.ctx, c.ns, definition.ComponentKind).Lookup(name)
}

// lazyReader is a client.Reader that connects on first use.
type lazyReader func(ctx context.Context) (client.Reader, error)

func (r lazyReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c, err := r(ctx)
	if err != nil {
		return err
	}
	return c.Get(ctx, key, obj, opts...)
}

func (r lazyReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c, err := r(ctx)
	if err != nil {
		return err
	}
	return c.List(ctx, list, opts...)
}

var _ client.Reader = lazyReader(nil)
