package controller

import (
	"encoding/json"
	"errors"
	"reflect"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// parameterSchema is what a WorkflowStepDefinition's status says of its
// parameter: the JSON Schema (status.parameterSchema) or, for a template
// that compiles yet has none, the ParameterSchema condition saying why. A
// template that does not compile has neither: its Ready condition says why.
type parameterSchema struct {
	// step is false for the kinds that keep no schema (ComponentDefinition).
	step bool
	raw  []byte
	cond *metav1.Condition
	// retry is the evaluator's own trouble (eval.ErrInterrupted): the
	// definition is reconciled again.
	retry error
}

// parameterSchema derives the schema of def, the template of obj, when it
// compiled.
func (r *DefinitionReconciler) parameterSchema(obj client.Object, def eval.Definition, compiled bool, generation int64) parameterSchema {
	if _, ok := obj.(*v1beta1.WorkflowStepDefinition); !ok {
		return parameterSchema{}
	}
	ps := parameterSchema{step: true}
	if !compiled {
		return ps
	}
	missing := func(reason string, err error) parameterSchema {
		ps.cond = &metav1.Condition{Type: v1beta1.ConditionParameterSchema, Status: metav1.ConditionFalse,
			Reason: reason, Message: err.Error(), ObservedGeneration: generation}
		return ps
	}
	s, err := r.Evaluator.ParameterSchema(def)
	if errors.Is(err, eval.ErrInterrupted) {
		ps.retry = err
		return ps
	}
	if err != nil {
		return missing("NotDerived", err)
	}
	if ps.raw, err = s.Bounded(); err != nil {
		return missing("TooLarge", err)
	}
	return ps
}

// same reports whether obj's status already says what ps says.
func (ps parameterSchema) same(obj client.Object) bool {
	d, ok := obj.(*v1beta1.WorkflowStepDefinition)
	if !ok || !ps.step {
		return true
	}
	have := meta.FindStatusCondition(d.Status.Conditions, v1beta1.ConditionParameterSchema)
	switch {
	case (have == nil) != (ps.cond == nil):
		return false
	case have != nil && (have.Message != ps.cond.Message || have.ObservedGeneration != ps.cond.ObservedGeneration):
		return false
	case d.Status.ParameterSchema == nil || ps.raw == nil:
		return d.Status.ParameterSchema == nil && ps.raw == nil
	}
	// The API server writes the JSON back with its keys in another order.
	var a, b any
	return json.Unmarshal(d.Status.ParameterSchema.Raw, &a) == nil && json.Unmarshal(ps.raw, &b) == nil && reflect.DeepEqual(a, b)
}

// set writes ps into obj's status.
func (ps parameterSchema) set(obj client.Object) {
	d, ok := obj.(*v1beta1.WorkflowStepDefinition)
	if !ok || !ps.step {
		return
	}
	d.Status.ParameterSchema = nil
	if ps.raw != nil {
		d.Status.ParameterSchema = &runtime.RawExtension{Raw: ps.raw}
	}
	if ps.cond != nil {
		meta.SetStatusCondition(&d.Status.Conditions, *ps.cond)
	} else {
		meta.RemoveStatusCondition(&d.Status.Conditions, v1beta1.ConditionParameterSchema)
	}
}
