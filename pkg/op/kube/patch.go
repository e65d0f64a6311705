package kube

import (
	"context"
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/transform"
)

// patchParams is kube.#Patch's $params, and op.#Patch itself.
type patchParams struct {
	Cluster string `json:"cluster"`
	// Value names the object: apiVersion, kind, metadata.name and namespace.
	Value map[string]any `json:"value"`
	Patch map[string]any `json:"patch"`
}

type patchOp struct{ clusters Clusters }

func (*patchOp) NewParams() any { return &patchParams{} }

// Class is Idempotent: a merge patch (strategic or JSON) sets the fields it
// names to the values it gives, so sending it again changes nothing, and
// running it on every evaluation puts those fields back if something else
// changed them, as apply does. (A strategic patch that appends to a list
// without a merge key would not be idempotent; built-in kinds have merge
// keys on the lists one patches.)
func (*patchOp) Class(any) op.Class { return op.Idempotent }

func (o *patchOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[patchParams](call)
	if err != nil {
		return op.Result{}, err
	}
	obj, err := objectOf(p.Value, true)
	if err != nil {
		return op.Result{}, err
	}
	if p.Patch == nil {
		return op.Result{}, op.Permanentf("patch is required")
	}
	pm, err := transform.JSONObject(p.Patch)
	if err != nil {
		return op.Result{}, op.Permanentf("patch: %w", err)
	}
	body, err := json.Marshal(pm)
	if err != nil {
		return op.Result{}, op.Permanentf("patch: %w", err)
	}
	patchType := types.MergePatchType
	if scheme.Scheme.Recognizes(obj.GroupVersionKind()) {
		patchType = types.StrategicMergePatchType
	}
	c, err := clusterFor(ctx, o.clusters, call.Step, p.Cluster)
	if err != nil {
		return op.Result{}, err
	}
	if err := defaultNamespace(c, obj, call.Step.Namespace); err != nil {
		return op.Result{}, err
	}
	what := describe(obj)
	if err := c.Patch(ctx, obj, client.RawPatch(patchType, body), client.FieldOwner(FieldOwner)); err != nil {
		return op.Result{}, apiError(obj.GroupVersionKind(), err, "patch %s", what)
	}
	return op.Result{Returns: map[string]any{"result": obj.Object}}, nil
}
