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

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// DefinitionReconciler compiles WorkflowStepDefinitions and reports the
// result in their Ready condition.
type DefinitionReconciler struct {
	Client    client.Client
	Evaluator Checker
}

// Checker compiles a definition and reports its errors: an
// *eval.Evaluator, or a sandbox.Pool that compiles in a worker process
// and returns an *eval.OverrunError for a compile over its bounds.
type Checker interface {
	Check(def eval.Definition) error
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
	var def v1beta1.WorkflowStepDefinition
	if err := r.Client.Get(ctx, req.NamespacedName, &def); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if overran(meta.FindStatusCondition(def.Status.Conditions, v1alpha1.ConditionReady), def.Generation) {
		// Compiling it again costs a worker and the bound again, for the
		// same answer: only a new generation is compiled (after a restart
		// too).
		return ctrl.Result{}, nil
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Compiled",
		Message: "the template compiles", ObservedGeneration: def.Generation}
	src, err := definition.FromObject(&def)
	if err == nil {
		err = r.Evaluator.Check(src.Definition)
	}
	if errors.Is(err, eval.ErrInterrupted) {
		return ctrl.Result{}, err // not the template's trouble: again, with backoff
	}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "TemplateError", err.Error()
		var over *eval.OverrunError
		if errors.As(err, &over) {
			cond.Reason = over.Reason
		}
	}
	if c := meta.FindStatusCondition(def.Status.Conditions, cond.Type); c != nil &&
		c.Status == cond.Status && c.Message == cond.Message && def.Status.ObservedGeneration == def.Generation {
		return ctrl.Result{}, nil
	}
	before := def.DeepCopy()
	meta.SetStatusCondition(&def.Status.Conditions, cond)
	def.Status.ObservedGeneration = def.Generation
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Status().Patch(ctx, &def, client.MergeFrom(before)))
}

// SetupWithManager registers the reconciler.
func (r *DefinitionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1beta1.WorkflowStepDefinition{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
