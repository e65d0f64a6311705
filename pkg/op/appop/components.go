package appop

import (
	"context"

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
	p, err := paramsOf[componentsParams](call)
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
	comps, err := Select(stored.Config, Selection{
		Components: p.Components, Policies: p.Policies, Context: p.Context, Namespace: run.Namespace,
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
