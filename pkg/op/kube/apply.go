package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// applyParams is kube.#Apply's $params, and op.#Apply itself.
type applyParams struct {
	Cluster string         `json:"cluster"`
	Value   map[string]any `json:"value"`
	// Patch is merged into Value (JSON merge patch) before applying.
	Patch map[string]any `json:"patch,omitempty"`
}

type applyOp struct {
	clusters Clusters
	f        *Family
}

func (*applyOp) NewParams() any     { return &applyParams{} }
func (*applyOp) Class(any) op.Class { return op.Idempotent }

func (o *applyOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[applyParams](call)
	if err != nil {
		return op.Result{}, err
	}
	obj, err := desired(p.Value, p.Patch)
	if err != nil {
		return op.Result{}, err
	}
	c, err := clusterFor(ctx, o.clusters, call.Step, p.Cluster)
	if err != nil {
		return op.Result{}, err
	}
	got, err := apply(ctx, c, obj, call.Step.Namespace)
	if err != nil {
		return op.Result{}, err
	}
	o.f.observe(call.Step, p.Cluster, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName())
	o.f.recent.wrote(p.Cluster, obj)
	return op.Result{Returns: map[string]any{"value": got}}, nil
}

// applyInParallelParams is kube.#ApplyInParallel's $params, and
// op.#ApplyInParallel itself.
type applyInParallelParams struct {
	Cluster string           `json:"cluster"`
	Value   []map[string]any `json:"value"`
}

// parallelism bounds the applies apply-in-parallel has in flight.
const parallelism = 8

type applyInParallelOp struct {
	clusters Clusters
	f        *Family
}

func (*applyInParallelOp) NewParams() any     { return &applyInParallelParams{} }
func (*applyInParallelOp) Class(any) op.Class { return op.Idempotent }

// Run checks every object before applying any, then applies them
// concurrently. All applies run to the end even when one fails: each is
// idempotent, so the work done is kept and a retry redoes only what failed.
func (o *applyInParallelOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	p, objs, c, err := applyList(ctx, o.clusters, call)
	if err != nil {
		return op.Result{}, err
	}

	out := make([]any, len(objs))
	errs := make([]error, len(objs))
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i, obj := range objs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("value[%d]: %w", i, ctx.Err())
				return
			}
			defer func() { <-sem }()
			got, err := apply(ctx, c, obj, call.Step.Namespace)
			if err != nil {
				errs[i] = fmt.Errorf("value[%d]: %w", i, err)
				return
			}
			o.f.observe(call.Step, p.Cluster, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName())
			o.f.recent.wrote(p.Cluster, obj)
			out[i] = got
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return op.Result{}, err
	}
	return op.Result{Returns: map[string]any{"value": out}}, nil
}

// applyInOrderOp is kube.#ApplyInOrder: the objects one after another, each
// applied only once the one before it was accepted, as a chain of
// dependent objects needs (a Namespace before what lives in it, a
// ConfigMap before the workload that mounts it).
type applyInOrderOp struct {
	clusters Clusters
	f        *Family
}

func (*applyInOrderOp) NewParams() any     { return &applyInParallelParams{} }
func (*applyInOrderOp) Class(any) op.Class { return op.Idempotent }

// Run checks every object before applying any, then applies them in list
// order and stops at the first refusal, naming it and how many objects
// before it were applied: those stay applied (each apply is idempotent, so
// a retry redoes the chain from the start without harm).
func (o *applyInOrderOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	p, objs, c, err := applyList(ctx, o.clusters, call)
	if err != nil {
		return op.Result{}, err
	}
	out := make([]any, 0, len(objs))
	for i, obj := range objs {
		got, err := apply(ctx, c, obj, call.Step.Namespace)
		if err != nil {
			return op.Result{}, fmt.Errorf("value[%d] (after %d of %d applied): %w", i, i, len(objs), err)
		}
		o.f.observe(call.Step, p.Cluster, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName())
		o.f.recent.wrote(p.Cluster, obj)
		out = append(out, got)
	}
	return op.Result{Returns: map[string]any{"value": out}}, nil
}

// applyList reads the params of an op that applies a list: its objects,
// every one checked before any is applied, and its cluster's client.
func applyList(ctx context.Context, clusters Clusters, call *op.Call) (*applyInParallelParams, []*unstructured.Unstructured, client.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	p, err := op.ParamsOf[applyInParallelParams](call)
	if err != nil {
		return nil, nil, nil, err
	}
	objs := make([]*unstructured.Unstructured, len(p.Value))
	for i, v := range p.Value {
		if objs[i], err = desired(v, nil); err != nil {
			return nil, nil, nil, fmt.Errorf("value[%d]: %w", i, err)
		}
	}
	c, err := clusterFor(ctx, clusters, call.Step, p.Cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, objs, c, nil
}

// desired is the object to apply: value with patch merged in and without
// the fields the server owns.
func desired(value, patch map[string]any) (*unstructured.Unstructured, error) {
	if value == nil {
		return nil, op.Permanentf("value is required")
	}
	m, err := transform.JSONObject(value)
	if err != nil {
		return nil, op.Permanentf("value: %w", err)
	}
	if patch != nil {
		pm, err := transform.JSONObject(patch)
		if err != nil {
			return nil, op.Permanentf("patch: %w", err)
		}
		m = transform.MergePatch(m, pm)
	}
	obj, err := checkObject(&unstructured.Unstructured{Object: m}, true)
	if err != nil {
		return nil, err
	}
	stripServerFields(obj)
	return obj, nil
}

// apply server-side applies obj, defaulting its namespace to ns, and returns
// the object the API server answered with.
func apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured, ns string) (map[string]any, error) {
	if err := defaultNamespace(c, obj, ns); err != nil {
		return nil, err
	}
	what := describe(obj)
	if err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return nil, apiError(obj.GroupVersionKind(), err, "apply %s", what)
	}
	return obj.Object, nil
}
