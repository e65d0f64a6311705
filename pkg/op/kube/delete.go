package kube

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// deleteParams is kube.#Delete's $params, and op.#Delete itself. With
// value.metadata.name the op deletes that object; without it, every object
// of value's kind that filter matches.
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
	p, err := paramsOf[deleteParams](call)
	if err != nil {
		return op.Result{}, err
	}
	obj, err := objectOf(p.Value, false)
	if err != nil {
		return op.Result{}, err
	}
	byName := obj.GetName() != ""
	if !byName && p.Filter == nil {
		return op.Result{}, op.Permanentf("delete %s: value.metadata.name or filter is required", describe(obj))
	}
	c, err := clusterFor(ctx, o.clusters, call.Step, p.Cluster)
	if err != nil {
		return op.Result{}, err
	}
	background := client.PropagationPolicy(metav1.DeletePropagationBackground)

	if byName {
		if err := defaultNamespace(c, obj, call.Step.Namespace); err != nil {
			return op.Result{}, err
		}
		o.f.recent.deleted(p.Cluster, obj)
		err := c.Delete(ctx, obj, background)
		if err != nil && !apierrors.IsNotFound(err) {
			return op.Result{}, apiError(err, "delete %s", describe(obj))
		}
		return op.Result{Returns: map[string]any{}}, nil
	}

	if p.Filter.Namespace != "" {
		obj.SetNamespace(p.Filter.Namespace)
	}
	if err := defaultNamespace(c, obj, call.Step.Namespace); err != nil {
		return op.Result{}, err
	}
	if obj.GetNamespace() == "" && len(p.Filter.MatchingLabels) == 0 {
		// A cluster-scoped kind with no labels would mean every object of the
		// kind in the cluster; that is never what a template means.
		return op.Result{}, op.Permanentf("delete %s: refusing to delete every object of the kind: filter.matchingLabels is empty", describe(obj))
	}
	err = c.DeleteAllOf(ctx, obj, background,
		client.InNamespace(obj.GetNamespace()), client.MatchingLabels(p.Filter.MatchingLabels))
	if err != nil {
		return op.Result{}, apiError(err, "delete %s matching %v", describe(obj), p.Filter.MatchingLabels)
	}
	return op.Result{Returns: map[string]any{}}, nil
}
