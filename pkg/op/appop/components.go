package appop

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// componentsParams is app.#Components' $params, and op.#AppComponents'
// own fields.
type componentsParams struct {
	Components []Selector     `json:"components"`
	Policies   []string       `json:"policies"`
	Context    map[string]any `json:"context"`
}

type componentsOp struct{ f *Family }

func (*componentsOp) NewParams() any     { return &componentsParams{} }
func (*componentsOp) Class(any) op.Class { return op.Idempotent }

func (o *componentsOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[componentsParams](call)
	if err != nil {
		return op.Result{}, err
	}
	run, err := o.f.ownRun(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	stored, err := configuration(ctx, o.f.own, run)
	if err != nil {
		return op.Result{}, err
	}
	overrides, err := globalOverrides(p.Context, run)
	if err != nil {
		return op.Result{}, err
	}
	comps, err := Select(stored.Config, Selection{
		Components: p.Components, Policies: p.Policies, Context: p.Context, Overrides: overrides, Namespace: run.Namespace,
	})
	if err != nil {
		return op.Result{}, op.Permanentf("workflowrun %s/%s: %w", run.Namespace, run.Name, err)
	}
	list := make([]any, len(comps))
	for i, c := range comps {
		list[i] = c.Value()
	}
	appID := run.Annotations[app.AnnotationRawAppID]
	if appID == "" {
		appID = stored.Config.Metadata.Annotations[app.AnnotationAppID]
	}
	return op.Result{Returns: map[string]any{"appId": appID, "components": list}}, nil
}

// engineKeys are the keys the engine sets in every template's context
// (pkg/engine stepContext), over the run's own.
var engineKeys = []string{"name", "namespace", "stepName", "stepSessionID"}

// globalOverrides are the context keys that override the configuration's
// global parameters, as they did when the run was launched: the step's
// context without the keys the engine sets, which take the value the run's
// spec.context gives them, if any. A global parameter named namespace
// keeps its value in a step, as it had at the launch, instead of becoming
// the run's namespace.
func globalOverrides(stepContext map[string]any, run *v1alpha1.WorkflowRun) (map[string]any, error) {
	out := make(map[string]any, len(stepContext))
	for k, v := range stepContext {
		out[k] = v
	}
	for _, k := range engineKeys {
		delete(out, k)
	}
	if run.Spec.Context == nil || len(run.Spec.Context.Raw) == 0 {
		return out, nil
	}
	var launched map[string]any
	d := json.NewDecoder(bytes.NewReader(run.Spec.Context.Raw))
	d.UseNumber()
	if err := d.Decode(&launched); err != nil {
		return nil, op.Permanentf("workflowrun %s/%s: spec.context is not an object: %w", run.Namespace, run.Name, err)
	}
	for _, k := range engineKeys {
		if v, ok := launched[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}
