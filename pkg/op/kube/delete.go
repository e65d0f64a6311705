package kube

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// deleteParams is kube.#Delete's $params, and op.#Delete itself.
//
// A filter with matchingLabels deletes every object of value's kind that
// the labels match, in filter.namespace (else value's namespace, else the
// step's), whether or not value names an object: community definitions
// (clean-jobs) name one and mean the filter, as KubeVela's delete does.
// Otherwise value.metadata.name deletes that one object (in
// filter.namespace when given), and with no name a filter of only a
// namespace deletes every object of the kind there.
type deleteParams struct {
	Cluster string         `json:"cluster"`
	Value   map[string]any `json:"value"`
	Filter  *filter        `json:"filter,omitempty"`
}

type deleteOp struct {
	clusters Clusters
	f        *Family
}

func (*deleteOp) NewParams() any { return &deleteParams{} }

// Class is Effect: deleting twice is harmless, but a later evaluation would
// delete an object that something else created since, so the delete happens
// once per step attempt.
func (*deleteOp) Class(any) op.Class { return op.Effect }

func (o *deleteOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[deleteParams](call)
	if err != nil {
		return op.Result{}, err
	}
	obj, err := objectOf(p.Value, false)
	if err != nil {
		return op.Result{}, err
	}
	byFilter := p.Filter != nil && (len(p.Filter.MatchingLabels) > 0 || obj.GetName() == "")
	if !byFilter && obj.GetName() == "" {
		return op.Result{}, op.Permanentf("delete %s: value.metadata.name or filter is required", describe(obj))
	}
	c, err := clusterFor(ctx, o.clusters, call.Step, p.Cluster)
	if err != nil {
		return op.Result{}, err
	}
	background := client.PropagationPolicy(metav1.DeletePropagationBackground)

	if p.Filter != nil && p.Filter.Namespace != "" {
		obj.SetNamespace(p.Filter.Namespace)
	}
	if !byFilter {
		if err := defaultNamespace(c, obj, call.Step.Namespace); err != nil {
			return op.Result{}, err
		}
		o.f.recent.deleted(p.Cluster, obj)
		err := c.Delete(ctx, obj, background)
		if err != nil && (kindNotServed(err) || !apierrors.IsNotFound(err)) {
			return op.Result{}, apiError(obj.GroupVersionKind(), err, "delete %s", describe(obj))
		}
		return op.Result{Returns: map[string]any{}}, nil
	}

	if err := defaultNamespace(c, obj, call.Step.Namespace); err != nil {
		return op.Result{}, err
	}
	obj.SetName("")
	if obj.GetNamespace() == "" && len(p.Filter.MatchingLabels) == 0 {
		// A cluster-scoped kind with no labels would mean every object of the
		// kind in the cluster; that is never what a template means.
		return op.Result{}, op.Permanentf("delete %s: refusing to delete every object of the kind: filter.matchingLabels is empty", describe(obj))
	}
	o.f.recent.deletedAll(p.Cluster, obj.GroupVersionKind(), obj.GetNamespace())
	err = c.DeleteAllOf(ctx, obj, background,
		client.InNamespace(obj.GetNamespace()), client.MatchingLabels(p.Filter.MatchingLabels))
	if err != nil {
		return op.Result{}, apiError(obj.GroupVersionKind(), err, "delete %s matching %v", describe(obj), p.Filter.MatchingLabels)
	}
	return op.Result{Returns: map[string]any{}}, nil
}
