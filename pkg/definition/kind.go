package definition

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// Kind is a kind of definition object. Every kind is found, compiled,
// cached and reported on (its Ready condition) the same way; they differ
// in what uses their template.
type Kind string

const (
	// StepKind defines step types: a step's type names one.
	StepKind Kind = "WorkflowStepDefinition"
	// ComponentKind defines component types: a component's type names one.
	ComponentKind Kind = "ComponentDefinition"
)

// Kinds are every kind of definition, in the order the controller sets up
// their reconcilers.
func Kinds() []Kind { return []Kind{StepKind, ComponentKind} }

// New returns an empty object of kind k.
func (k Kind) New() (client.Object, error) {
	switch k {
	case StepKind:
		return &v1beta1.WorkflowStepDefinition{}, nil
	case ComponentKind:
		return &v1beta1.ComponentDefinition{}, nil
	}
	return nil, fmt.Errorf("%q is not a kind of definition (want %s or %s)", string(k), StepKind, ComponentKind)
}

// sourceType is the definition's type in `vela def` layout (type: "...").
func (k Kind) sourceType() string {
	if k == ComponentKind {
		return "component"
	}
	return "workflow-step"
}

// KindOf returns the kind of a definition object.
func KindOf(obj client.Object) (Kind, error) {
	switch obj.(type) {
	case *v1beta1.WorkflowStepDefinition:
		return StepKind, nil
	case *v1beta1.ComponentDefinition:
		return ComponentKind, nil
	}
	return "", fmt.Errorf("%T is not a definition object", obj)
}

// FromObject turns a definition object (a WorkflowStepDefinition or a
// ComponentDefinition) into its CUE template.
func FromObject(obj client.Object) (eval.DefinitionSource, error) {
	kind, err := KindOf(obj)
	if err != nil {
		return eval.DefinitionSource{}, err
	}
	var schematic *v1beta1.Schematic
	var compensate *eval.Compensation
	switch def := obj.(type) {
	case *v1beta1.WorkflowStepDefinition:
		schematic = def.Spec.Schematic
		if compensate, err = compensationOf(def); err != nil {
			return eval.DefinitionSource{}, err
		}
	case *v1beta1.ComponentDefinition:
		schematic = def.Spec.Schematic
	}
	if schematic == nil || schematic.CUE == nil || strings.TrimSpace(schematic.CUE.Template) == "" {
		return eval.DefinitionSource{}, fmt.Errorf("%s %q has no spec.schematic.cue.template", kind, obj.GetName())
	}
	return eval.DefinitionSource{
		Definition:  eval.Definition{Name: obj.GetName(), Template: schematic.CUE.Template, Compensate: compensate},
		Type:        kind.sourceType(),
		Description: obj.GetAnnotations()[AnnotationDescription],
	}, nil
}

// compensationOf reads a step definition's default compensation
// (spec.compensate), nil when it declares none.
func compensationOf(def *v1beta1.WorkflowStepDefinition) (*eval.Compensation, error) {
	c := def.Spec.Compensate
	if c == nil {
		return nil, nil
	}
	out := &eval.Compensation{Type: c.Type}
	if c.Properties != nil && len(c.Properties.Raw) > 0 {
		if err := json.Unmarshal(c.Properties.Raw, &out.Properties); err != nil {
			return nil, fmt.Errorf("%s %q: spec.compensate.properties is not a JSON object: %v", StepKind, def.Name, err)
		}
	}
	return out, nil
}

// Status is what the controller reports on a definition: pointers into
// the object's status.
type Status struct {
	Conditions         *[]metav1.Condition
	ObservedGeneration *int64
}

// StatusOf returns the status fields of a definition object.
func StatusOf(obj client.Object) (Status, error) {
	switch def := obj.(type) {
	case *v1beta1.WorkflowStepDefinition:
		return Status{&def.Status.Conditions, &def.Status.ObservedGeneration}, nil
	case *v1beta1.ComponentDefinition:
		return Status{&def.Status.Conditions, &def.Status.ObservedGeneration}, nil
	}
	return Status{}, fmt.Errorf("%T is not a definition object", obj)
}

// ConditionRewritten is the condition of a definition whose template was
// written for an older CUE and is rewritten when it is loaded (list
// arithmetic becomes list.Concat, unused imports are dropped; see
// eval.Rewrites): True, with each rewrite and its position in the message.
// A definition loaded as written has no such condition.
const ConditionRewritten = "Rewritten"

// RewrittenCondition returns def's Rewritten condition at generation, or
// nil when its template loads as written (or does not parse: its Ready
// condition says why).
func RewrittenCondition(def eval.Definition, generation int64) *metav1.Condition {
	rewrites, err := eval.Rewrites(def)
	if err != nil || len(rewrites) == 0 {
		return nil
	}
	return &metav1.Condition{Type: ConditionRewritten, Status: metav1.ConditionTrue, Reason: "OlderCUE",
		Message:            "the template, written for an older CUE, is loaded rewritten: " + strings.Join(rewrites, "; "),
		ObservedGeneration: generation}
}
