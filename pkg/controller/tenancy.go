package controller

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// opsClusters is the local cluster as the kube ops see it. By default each
// step acts as its run's ServiceAccount (pkg/tenancy): reads through
// shared, after an access review of that identity; writes and Secrets sent
// impersonating it. With o.SingleTenant every step acts with the
// controller's own identity through shared, as before multi-tenancy.
func opsClusters(mgr ctrl.Manager, shared client.Client, o Options) (kube.Clusters, error) {
	if o.SingleTenant {
		return kube.Local(shared), nil
	}
	uncached, err := client.New(mgr.GetConfig(), client.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
	})
	if err != nil {
		return nil, err
	}
	ids, err := tenancy.New(tenancy.Options{
		Config: mgr.GetConfig(), HTTPClient: mgr.GetHTTPClient(),
		Reader: shared, Client: uncached, DefaultServiceAccount: o.DefaultServiceAccount,
	})
	if err != nil {
		return nil, err
	}
	return kube.LocalAs(func(_ context.Context, step op.Step) (client.Client, error) {
		return ids.For(tenancy.Of(step, o.DefaultServiceAccount))
	}), nil
}
