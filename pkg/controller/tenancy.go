package controller

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/opcache"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// opsClusters is the clusters as the kube ops see them: "" and "local"
// are the local cluster (localClusters), any other name a cluster Secret of
// o.SystemNamespace read with a direct GET as the step's identity (the
// controller's own in single-tenant mode), acting there as the step's
// ServiceAccount user unless single-tenant: see pkg/clusters. Reads on a
// named cluster go through a watched cache per cluster connection (added
// to mgr, which runs it), with o.OpsCache's bounds, whose events wake runs
// through waker.
func opsClusters(mgr ctrl.Manager, shared client.Client, o Options, waker *Waker) (kube.Clusters, error) {
	local, as, err := localClusters(mgr, shared, o)
	if err != nil {
		return nil, err
	}
	limits, err := o.Config.RateLimits.clusterLimits()
	if err != nil {
		return nil, err
	}
	reg, err := clusters.New(clusters.Options{
		SystemNamespace: o.SystemNamespace, Local: local, SingleTenant: o.SingleTenant, Limits: limits,
		Secrets: func(ctx context.Context, step op.Step) (client.Reader, error) {
			if o.SingleTenant {
				return mgr.GetAPIReader(), nil // uncached: no Secret lands in a cache
			}
			return as(ctx, step)
		},
		DefaultServiceAccount: o.DefaultServiceAccount, Scheme: mgr.GetScheme(),
		Cache: &clusters.Cache{
			Reader: o.OpsCache, OnEvent: waker.NotifyIn,
			InUse: func(cluster string, s opcache.Scope) bool { return waker.WaitsIn(cluster, s.GVK, s.Namespace) },
		},
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(reg); err != nil {
		return nil, err
	}
	waker.WatchRemoteWith(reg)
	return reg, nil
}

// localClusters is the local cluster as the kube ops see it, and the
// client each step acts through there (nil when single-tenant). By default each
// step acts as its run's ServiceAccount (pkg/tenancy): reads through
// shared, after an access review of that identity; writes and Secrets sent
// impersonating it. With o.SingleTenant every step acts with the
// controller's own identity through shared, as before multi-tenancy.
func localClusters(mgr ctrl.Manager, shared client.Client, o Options) (kube.Clusters, func(context.Context, op.Step) (client.Client, error), error) {
	if o.SingleTenant {
		return kube.Local(shared), nil, nil
	}
	uncached, err := client.New(mgr.GetConfig(), client.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
	})
	if err != nil {
		return nil, nil, err
	}
	ids, err := tenancy.New(tenancy.Options{
		Config: mgr.GetConfig(), HTTPClient: mgr.GetHTTPClient(),
		Reader: shared, Client: uncached, DefaultServiceAccount: o.DefaultServiceAccount,
	})
	if err != nil {
		return nil, nil, err
	}
	as := func(_ context.Context, step op.Step) (client.Client, error) {
		return ids.For(tenancy.Of(step, o.DefaultServiceAccount))
	}
	return kube.LocalAs(as), as, nil
}
