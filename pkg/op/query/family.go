package query

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// Family is the query ops.
type Family struct{ clusters kube.Clusters }

// New returns the query ops, reading through clusters as each step's
// identity.
func New(clusters kube.Clusters) *Family { return &Family{clusters: clusters} }

// Provider is the #provider of the ops' CUE schemas.
func (*Family) Provider() string { return "query" }

// Ops maps each #do to its op.
func (f *Family) Ops() map[string]op.Op {
	return map[string]op.Op{
		"listResourcesInApp":      &listOp{f: f},
		"collectResources":        &collectOp{f: f},
		"collectServiceEndpoints": &endpointsOp{f: f},
		"listAppliedResources": unsupported("query.listAppliedResources",
			"it reads the resource tracker and resource tree of KubeVela's Application controller, which Stepflow does not have; use listResourcesInApp"),
		"searchEvents": unsupported("query.searchEvents",
			"it is a query of KubeVela's dashboard (VelaQL), not a workflow op; read Events with kube.#List"),
		"collectLogsInPod": unsupported("query.collectLogsInPod",
			"it is a query of KubeVela's dashboard (VelaQL), not a workflow op"),
	}
}

var _ op.Family = (*Family)(nil)

// Lister is a kube.Clusters that can also name its clusters:
// *clusters.Registry.
type Lister interface {
	Names(ctx context.Context, step op.Step) ([]string, error)
}

// Multicluster is the "multicluster" ops: list-clusters.
type Multicluster struct{ clusters kube.Clusters }

// NewMulticluster returns the multicluster ops over clusters, which
// answers list-clusters when it is a Lister.
func NewMulticluster(clusters kube.Clusters) *Multicluster { return &Multicluster{clusters: clusters} }

// Provider is the #provider of the ops' CUE schemas.
func (*Multicluster) Provider() string { return "multicluster" }

// Ops maps each #do to its op.
func (m *Multicluster) Ops() map[string]op.Op {
	return map[string]op.Op{"list-clusters": &listClustersOp{clusters: m.clusters}}
}

var _ op.Family = (*Multicluster)(nil)

type listClustersOp struct{ clusters kube.Clusters }

func (*listClustersOp) NewParams() any     { return &map[string]any{} }
func (*listClustersOp) Class(any) op.Class { return op.Idempotent }

func (o *listClustersOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	names := []string{}
	if l, ok := o.clusters.(Lister); ok {
		got, err := l.Names(ctx, call.Step)
		if err != nil {
			return op.Result{}, fmt.Errorf("listing the clusters: %w", err)
		}
		names = got
	}
	list := make([]any, len(names))
	for i, n := range names {
		list[i] = n
	}
	return op.Result{Returns: map[string]any{"outputs": map[string]any{"clusters": list}}}, nil
}

// unsupportedOp is an op of KubeVela's that Stepflow cannot answer: it
// fails every call, for good, saying why.
type unsupportedOp struct{ name, why string }

func unsupported(name, why string) op.Op { return &unsupportedOp{name: name, why: why} }

func (*unsupportedOp) NewParams() any     { return &map[string]any{} }
func (*unsupportedOp) Class(any) op.Class { return op.Idempotent }

func (o *unsupportedOp) Run(context.Context, *op.Call) (op.Result, error) {
	return op.Result{}, op.Permanentf("%s is not supported by Stepflow: %s", o.name, o.why)
}

// clientFor is the step identity's client of cluster ("" or "local": the
// local one).
func (f *Family) clientFor(ctx context.Context, step op.Step, cluster string) (client.Client, error) {
	if f.clusters == nil {
		return nil, op.Permanentf("query ops: no clusters are configured")
	}
	c, err := f.clusters.Cluster(ctx, step, cluster)
	if err != nil {
		if op.IsPermanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("cluster %q: %w", clusterName(cluster), err)
	}
	return c, nil
}

// clusterName is the name a result gives cluster.
func clusterName(cluster string) string {
	if cluster == "" {
		return kube.LocalCluster
	}
	return cluster
}
