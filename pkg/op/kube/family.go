package kube

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// FieldOwner is the field manager of everything the ops write.
const FieldOwner = "stepflow"

// LocalCluster is the other name, besides "", of the cluster the controller
// runs in.
const LocalCluster = "local"

// Clusters resolves a cluster name from a template to a client that acts
// as the step's identity (op.Step.ServiceAccount in op.Step.Namespace):
// every request an op makes, and every Secret read for it, has that
// identity's rights and no more. The name "" is the local cluster. An
// unknown name should be an op.Permanent error. A registry of remote
// clusters must read their credentials (kubeconfig Secrets) as the step's
// identity too, and act as it there.
type Clusters interface {
	Cluster(ctx context.Context, step op.Step, name string) (client.Client, error)
}

// ClustersFunc adapts a function to Clusters.
type ClustersFunc func(ctx context.Context, step op.Step, name string) (client.Client, error)

// Cluster implements Clusters.
func (f ClustersFunc) Cluster(ctx context.Context, step op.Step, name string) (client.Client, error) {
	return f(ctx, step, name)
}

var _ Clusters = ClustersFunc(nil)

// Local is the registry of a controller that manages only its own cluster
// and acts with its own identity for every step (a single-tenant install,
// the CLI): "" and "local" resolve to c, any other name is an unknown
// cluster.
func Local(c client.Client) Clusters {
	return LocalAs(func(context.Context, op.Step) (client.Client, error) { return c, nil })
}

// LocalAs is the registry of a controller that manages only its own
// cluster and acts as each step's identity: "" and "local" resolve to the
// client as returns for the step, any other name is an unknown cluster.
func LocalAs(as func(ctx context.Context, step op.Step) (client.Client, error)) Clusters {
	return ClustersFunc(func(ctx context.Context, step op.Step, name string) (client.Client, error) {
		if name == "" || name == LocalCluster {
			return as(ctx, step)
		}
		return nil, op.Permanentf("unknown cluster %q", name)
	})
}

// Observer learns which objects a step attempt looked at (applied, read or
// listed), so the controller can wake a waiting step when one of them
// changes. name is "" for a list.
type Observer interface {
	Observe(step op.Step, cluster string, gvk schema.GroupVersionKind, namespace, name string)
}

// Family is the kube ops, all resolving clusters through one registry.
type Family struct {
	clusters Clusters
	observer Observer
	recent   *recentWrites
}

// WithObserver makes the family report the objects each call looks at.
func (f *Family) WithObserver(o Observer) *Family {
	f.observer = o
	return f
}

func (f *Family) observe(step op.Step, cluster string, gvk schema.GroupVersionKind, namespace, name string) {
	if f.observer != nil {
		f.observer.Observe(step, cluster, gvk, namespace, name)
	}
}

// New returns the family using clusters.
func New(clusters Clusters) *Family { return &Family{clusters: clusters, recent: newRecentWrites()} }

// Provider is the #provider of the ops' CUE schemas.
func (f *Family) Provider() string { return "kube" }

// Ops maps each #do to its op.
func (f *Family) Ops() map[string]op.Op {
	return map[string]op.Op{
		"apply":             &applyOp{clusters: f.clusters, f: f},
		"apply-in-parallel": &applyInParallelOp{clusters: f.clusters, f: f},
		"apply-in-order":    &applyInOrderOp{clusters: f.clusters, f: f},
		"patch":             &patchOp{clusters: f.clusters},
		"read":              &readOp{clusters: f.clusters, f: f},
		"list":              &listOp{clusters: f.clusters, f: f},
		"delete":            &deleteOp{clusters: f.clusters, f: f},
	}
}

var _ op.Family = (*Family)(nil)

// clusterFor resolves name for step, keeping a permanent error permanent
// and naming the cluster in any other.
func clusterFor(ctx context.Context, clusters Clusters, step op.Step, name string) (client.Client, error) {
	c, err := clusters.Cluster(ctx, step, name)
	if err != nil {
		if op.IsPermanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("cluster %q: %w", name, err)
	}
	return c, nil
}
