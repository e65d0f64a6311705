package kube

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// readParams is kube.#Read's $params, and op.#Read itself (whose value the
// flat dialect overwrites with the object read; only apiVersion, kind, name
// and namespace are used).
type readParams struct {
	Cluster string         `json:"cluster"`
	Value   map[string]any `json:"value"`
}

type readOp struct {
	clusters Clusters
	f        *Family
}

func (*readOp) NewParams() any     { return &readParams{} }
func (*readOp) Class(any) op.Class { return op.Idempotent }

func (o *readOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[readParams](call)
	if err != nil {
		return op.Result{}, err
	}
	obj, err := objectOf(p.Value, true)
	if err != nil {
		return op.Result{}, err
	}
	c, err := clusterFor(ctx, o.clusters, call.Step, p.Cluster)
	if err != nil {
		return op.Result{}, err
	}
	if err := defaultNamespace(c, obj, call.Step.Namespace); err != nil {
		return op.Result{}, err
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	o.f.observe(call.Step, p.Cluster, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName())
	err = c.Get(ctx, client.ObjectKeyFromObject(obj), got)
	if apierrors.IsNotFound(err) && !kindNotServed(err) {
		if mine, ok := o.f.recent.newer(p.Cluster, obj, nil); ok {
			return op.Result{Returns: map[string]any{"value": mine}}, nil
		}
		return op.Result{Returns: map[string]any{"err": err.Error()}}, nil
	}
	if err != nil {
		return op.Result{}, apiError(obj.GroupVersionKind(), err, "read %s", describe(obj))
	}
	if mine, ok := o.f.recent.newer(p.Cluster, obj, got); ok {
		return op.Result{Returns: map[string]any{"value": mine}}, nil
	}
	return op.Result{Returns: map[string]any{"value": got.Object}}, nil
}

// listParams is kube.#List's $params, and op.#List itself.
type listParams struct {
	Cluster  string `json:"cluster"`
	Resource struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	} `json:"resource"`
	// Filter.Namespace "" lists every namespace.
	Filter *filter `json:"filter,omitempty"`
}

type listOp struct {
	clusters Clusters
	f        *Family
}

func (*listOp) NewParams() any     { return &listParams{} }
func (*listOp) Class(any) op.Class { return op.Idempotent }

func (o *listOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[listParams](call)
	if err != nil {
		return op.Result{}, err
	}
	if err := checkType(p.Resource.APIVersion, p.Resource.Kind, "resource."); err != nil {
		return op.Result{}, err
	}
	c, err := clusterFor(ctx, o.clusters, call.Step, p.Cluster)
	if err != nil {
		return op.Result{}, err
	}
	gvk := schema.FromAPIVersionAndKind(p.Resource.APIVersion, p.Resource.Kind+"List")
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk)
	var opts []client.ListOption
	ns := ""
	if f := p.Filter; f != nil {
		ns = f.Namespace
		opts = append(opts, client.InNamespace(f.Namespace), client.MatchingLabels(f.MatchingLabels))
	}
	o.f.observe(call.Step, p.Cluster, schema.FromAPIVersionAndKind(p.Resource.APIVersion, p.Resource.Kind), ns, "")
	if err := c.List(ctx, list, opts...); err != nil {
		return op.Result{}, apiError(schema.FromAPIVersionAndKind(p.Resource.APIVersion, p.Resource.Kind), err, "list %s %s", p.Resource.APIVersion, p.Resource.Kind)
	}
	return op.Result{Returns: map[string]any{"list": list.UnstructuredContent()}}, nil
}
