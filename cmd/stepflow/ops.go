package main

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// buildOps wires every op family. The cluster client is made on first use,
// so commands that never touch a cluster need no kubeconfig.
func buildOps(restConfig func() (*rest.Config, error)) (*op.Registry, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, v1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	var (
		once sync.Once
		c    client.Client
		err  error
	)
	clusters := kube.Local(nil)
	lazy := kube.ClustersFunc(func(ctx context.Context, name string) (client.Client, error) {
		once.Do(func() {
			var cfg *rest.Config
			if cfg, err = restConfig(); err != nil {
				err = op.Permanent(err)
				return
			}
			c, err = client.New(cfg, client.Options{Scheme: scheme})
			if err == nil {
				clusters = kube.Local(c)
			}
		})
		if err != nil {
			return nil, err
		}
		return clusters.Cluster(ctx, name)
	})
	reg := op.NewRegistry().Add(
		builtin.New(),
		builtin.NewLog(),
		kube.New(lazy),
		httpop.New(httpop.Options{Secrets: kube.Secrets(lazy)}),
		transform.New(),
	)
	return reg, nil
}
