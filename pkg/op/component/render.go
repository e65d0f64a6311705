package component

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Evaluator evaluates a component's template: the sandbox pool in the
// controller, an eval.Evaluator elsewhere.
type Evaluator interface {
	Evaluate(ctx context.Context, req eval.Request) eval.Outcome
}

var _ Evaluator = (*eval.Evaluator)(nil)

// Definitions finds component types by name; definition.Lookup of
// definition.ComponentKind is one. A name it does not have is a
// *definition.NotFoundError, which the render reports as permanent; any
// other error is taken for a passing one.
type Definitions interface {
	Lookup(name string) (eval.Definition, error)
}

var _ Definitions = definition.Lookup{}

// TypesFunc returns the component types seen by runs in namespace ns.
type TypesFunc func(ctx context.Context, ns string) Definitions

// Fixed is a set of component types that does not change, by name: for
// `stepflow step run` and tests.
type Fixed map[string]eval.Definition

// Lookup implements Definitions.
func (f Fixed) Lookup(name string) (eval.Definition, error) {
	if d, ok := f[name]; ok {
		return d, nil
	}
	return eval.Definition{}, &definition.NotFoundError{Kind: definition.ComponentKind, Name: name}
}

// Types returns f for every namespace.
func (f Fixed) Types() TypesFunc {
	return func(context.Context, string) Definitions { return f }
}

// Deferred is an Evaluator set after it is handed out: the op set is
// built before the evaluator that needs it (the sandbox pool), and the
// render op is part of the op set. Until Set, every render is a retryable
// error.
type Deferred struct {
	ev atomic.Pointer[Evaluator]
}

// Set makes ev the evaluator renders go to.
func (d *Deferred) Set(ev Evaluator) { d.ev.Store(&ev) }

// Evaluate implements Evaluator.
func (d *Deferred) Evaluate(ctx context.Context, req eval.Request) eval.Outcome {
	ev := d.ev.Load()
	if ev == nil {
		return eval.Outcome{Phase: eval.Broken, Reason: eval.ReasonOp,
			Message: eval.Where("", req.Definition.Name) + "no evaluator to render components with yet"}
	}
	return (*ev).Evaluate(ctx, req)
}

var _ Evaluator = (*Deferred)(nil)

// Options are the family's dependencies.
type Options struct {
	// Types finds component types for a run's namespace. Nil knows none.
	Types TypesFunc
	// Evaluator renders templates. Nil renders nothing: enough for a
	// catalog that only decodes calls (an evaluator worker).
	Evaluator Evaluator
}

// Family is the "component" op family.
type Family struct {
	render *render
}

// New returns the family.
func New(o Options) *Family { return &Family{render: &render{o: o}} }

// Provider is the #provider of the ops' CUE schemas.
func (*Family) Provider() string { return "component" }

// Ops maps each #do to its op.
func (f *Family) Ops() map[string]op.Op { return map[string]op.Op{"render": f.render} }

var _ op.Family = (*Family)(nil)

// renderParams is component.#Render's $params (and op.#RenderComponent,
// whose objects field the decoder ignores).
type renderParams struct {
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Namespace  string         `json:"namespace"`
	Properties map[string]any `json:"properties"`
	Context    map[string]any `json:"context"`
}

type render struct{ o Options }

func (*render) NewParams() any     { return &renderParams{} }
func (*render) Class(any) op.Class { return op.Idempotent }

// DefinitionName is the name of the ComponentDefinition a component type
// selects: the type itself, or an SREWorks TYPE in lower case with "_" as
// "-" (K8S_MICROSERVICE selects k8s-microservice).
func DefinitionName(typ string) string {
	return strings.ReplaceAll(strings.ToLower(typ), "_", "-")
}

// helmRender is the one op with effects outside the process that a
// component template may call: it reads a chart and renders it.
var helmRender = op.Name{Provider: "helm", Do: "render"}

func (r *render) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, ok := call.Params.(*renderParams)
	if !ok {
		return op.Result{}, op.Permanentf("params are %T, want *renderParams", call.Params)
	}
	if p.Type == "" || p.Name == "" {
		return op.Result{}, op.Permanentf("a component needs a type and a name (got type %q, name %q)", p.Type, p.Name)
	}
	where := fmt.Sprintf("component %q (type %q)", p.Name, p.Type)
	if r.o.Types == nil || r.o.Evaluator == nil {
		return op.Result{}, op.Permanentf("%s: this op set renders no components", where)
	}
	defName := DefinitionName(p.Type)
	def, err := r.o.Types(ctx, call.Step.Namespace).Lookup(defName)
	var nf *definition.NotFoundError
	switch {
	case errors.As(err, &nf):
		return op.Result{}, op.Permanentf("%s: unknown component type: %v", where, err)
	case err != nil:
		return op.Result{}, fmt.Errorf("%s: looking up ComponentDefinition %q: %w", where, defName, err)
	}

	namespace := p.Namespace
	if namespace == "" {
		namespace = call.Step.Namespace
	}
	rctx := renderContext(p, namespace)
	props := p.Properties
	if props == nil {
		props = map[string]any{}
	}
	// The nested evaluation is its own session: no step name (its messages
	// name the definition), and an id of its own, so that a worker dying
	// under it is not counted against the step's evaluation.
	step := call.Step
	step.StepName = ""
	step.StepID = call.Key() + "#render"
	out := r.o.Evaluator.Evaluate(ctx, eval.Request{
		Definition: def, Parameters: props, Context: rctx, Step: step,
		Runner:  admit(p.Name),
		Outputs: []string{"output", "outputs"},
		Data:    true,
	})
	switch out.Phase {
	case eval.Succeeded:
	case eval.Failed:
		return op.Result{}, op.Permanentf("%s: %s", where, out.Message)
	case eval.Waiting, eval.Suspending:
		return op.Result{}, op.Permanentf("%s: the template of ComponentDefinition %q stopped to wait (%s); a render cannot wait", where, def.Name, out.Message)
	default: // Broken, Interrupted: its cause, if any, stays reachable
		cause := out.Err
		if cause == nil {
			cause = ctx.Err()
		}
		return op.Result{}, &retryable{msg: where + ": " + out.Message, cause: cause}
	}
	objects, err := collect(out)
	if err != nil {
		return op.Result{}, op.Permanentf("%s: ComponentDefinition %q: %v", where, def.Name, err)
	}
	appID := ""
	if id, ok := rctx["appId"]; ok && id != nil {
		appID = fmt.Sprint(id)
	}
	for _, obj := range objects {
		stamp(obj, namespace, p.Name, appID)
	}
	list := make([]any, len(objects))
	for i, o := range objects {
		list[i] = o
	}
	return op.Result{Returns: map[string]any{"objects": list}}, nil
}

// renderContext is the template's context: the given fields, then name and
// namespace, and appName defaulting to appId.
func renderContext(p *renderParams, namespace string) map[string]any {
	c := make(map[string]any, len(p.Context)+3)
	for k, v := range p.Context {
		c[k] = v
	}
	c["name"] = p.Name
	c["namespace"] = namespace
	if _, ok := c["appName"]; !ok {
		if id, ok := c["appId"]; ok {
			c["appName"] = id
		}
	}
	return c
}

// admit is the runner of a render's op calls: the template may compute
// (op.Pure ops) and render a chart (helm.render), and nothing else. A
// render runs again on every evaluation of the step, so an op with effects
// would repeat them; and a template that reaches a cluster or the network
// on a user's behalf is what the step's own ops are for.
func admit(component string) op.Runner {
	return op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
		if _, pure := call.Op.(op.Pure); pure || call.Name == helmRender {
			return op.Direct.Run(ctx, call)
		}
		return op.Result{}, op.Permanentf("op %s at %q may not be called while rendering component %q: a component template may call only pure ops and helm.render",
			call.Name, call.Path, component)
	})
}

// retryable is a render that a retry may pass: the message of the nested
// evaluation, wrapping its cause (an op's error, a cancelled context).
type retryable struct {
	msg   string
	cause error
}

func (e *retryable) Error() string { return e.msg }
func (e *retryable) Unwrap() error { return e.cause }
