package controller

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/defschema"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// DefinitionReconciler compiles the definitions of one kind
// (WorkflowStepDefinitions or ComponentDefinitions) and reports the result
// in their Ready condition. Setup builds one per definition.Kind.
type DefinitionReconciler struct {
	Client    client.Client
	Evaluator Checker
	// Kind is the kind of definition reconciled (definition.StepKind when
	// empty).
	Kind definition.Kind
}

func (r *DefinitionReconciler) kind() definition.Kind {
	if r.Kind == "" {
		return definition.StepKind
	}
	return r.Kind
}

// Checker compiles a definition and reports its errors: an
// *eval.Evaluator, or a sandbox.Pool that compiles in a worker process
// and returns an *eval.OverrunError for a compile over its bounds.
type Checker interface {
	Check(def eval.Definition) error
	// ParameterSchema derives the JSON Schema of the definition's
	// parameter, kept on a WorkflowStepDefinition's status.
	ParameterSchema(def eval.Definition) (*defschema.Schema, error)
}

// Evaluator is what the controller evaluates with: the engine's steps and
// ifs, and the definitions' compile checks.
type Evaluator interface {
	engine.Evaluator
	Checker
}

var _ Evaluator = (*eval.Evaluator)(nil)

// overran reports whether c says the definition's template, at the
// generation c observed, went over the evaluator's bounds while compiling.
func overran(c *metav1.Condition, generation int64) bool {
	return c != nil && c.Status == metav1.ConditionFalse && c.ObservedGeneration == generation &&
		(c.Reason == eval.ReasonTimeout || c.Reason == eval.ReasonMemory)
}

// Reconcile implements reconcile.Reconciler.
func (r *DefinitionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	def, err := r.kind().New()
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	if err := r.Client.Get(ctx, req.NamespacedName, def); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	status, err := definition.StatusOf(def)
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	generation := def.GetGeneration()
	if overran(meta.FindStatusCondition(*status.Conditions, v1alpha1.ConditionReady), generation) {
		// Compiling it again costs a worker and the bound again, for the
		// same answer: only a new generation is compiled (after a restart
		// too).
		return ctrl.Result{}, nil
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Compiled",
		Message: "the template compiles", ObservedGeneration: generation}
	src, err := definition.FromObject(def)
	var rewritten *metav1.Condition
	if err == nil {
		rewritten = definition.RewrittenCondition(src.Definition, generation)
		err = r.Evaluator.Check(src.Definition)
	}
	schema := r.parameterSchema(def, src.Definition, err == nil, generation)
	if errors.Is(err, eval.ErrInterrupted) || schema.retry != nil {
		return ctrl.Result{}, errors.Join(err, schema.retry) // not the template's trouble: again, with backoff
	}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "TemplateError", err.Error()
		var over *eval.OverrunError
		if errors.As(err, &over) {
			cond.Reason = over.Reason
		}
	}
	if c := meta.FindStatusCondition(*status.Conditions, cond.Type); c != nil &&
		c.Status == cond.Status && c.Message == cond.Message && *status.ObservedGeneration == generation &&
		sameRewrites(meta.FindStatusCondition(*status.Conditions, definition.ConditionRewritten), rewritten) &&
		schema.same(def) {
		return ctrl.Result{}, nil
	}
	before := def.DeepCopyObject().(client.Object)
	meta.SetStatusCondition(status.Conditions, cond)
	if rewritten != nil {
		meta.SetStatusCondition(status.Conditions, *rewritten)
	} else {
		meta.RemoveStatusCondition(status.Conditions, definition.ConditionRewritten)
	}
	*status.ObservedGeneration = generation
	schema.set(def)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Status().Patch(ctx, def, client.MergeFrom(before)))
}

// sameRewrites reports whether the definition's Rewritten condition (have)
// already says what want says (nil: no condition).
func sameRewrites(have, want *metav1.Condition) bool {
	if have == nil || want == nil {
		return have == nil && want == nil
	}
	return have.Message == want.Message && have.ObservedGeneration == want.ObservedGeneration
}

// SetupWithManager registers the reconciler.
func (r *DefinitionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	def, err := r.kind().New()
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(def, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
