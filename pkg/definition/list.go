package definition

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// AnnotationDescription holds a definition's description, as in KubeVela.
const AnnotationDescription = "definition.oam.dev/description"

// Visible is a definition that runs of a namespace resolve a name to.
type Visible struct {
	// Object is the definition: a *v1beta1.WorkflowStepDefinition or a
	// *v1beta1.ComponentDefinition.
	Object client.Object
	// System is whether it is the system namespace's, which the run's
	// namespace does not define again.
	System bool
}

// List returns the definitions of the lookup's kind that runs of its
// namespace see, as Lookup resolves their names: the namespace's own,
// then those of the system namespace it does not define again; sorted by
// name. It reads through Reader only. A lookup for namespace "" lists the
// system namespace's.
func (l Lookup) List() ([]Visible, error) {
	kind := l.kind
	if kind == "" {
		kind = StepKind
	}
	namespaces := l.Namespaces()
	if l.ns == "" {
		namespaces = namespaces[1:]
	}
	var out []Visible
	seen := map[string]bool{}
	for i, ns := range namespaces {
		objs, err := listKind(l, kind, ns)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if seen[o.GetName()] {
				continue // the namespace's own hides the system one
			}
			seen[o.GetName()] = true
			out = append(out, Visible{Object: o, System: i > 0 || ns != l.ns})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object.GetName() < out[j].Object.GetName() })
	return out, nil
}

// listKind lists the definitions of kind in namespace ns.
func listKind(l Lookup, kind Kind, ns string) ([]client.Object, error) {
	var out []client.Object
	switch kind {
	case StepKind:
		var list v1beta1.WorkflowStepDefinitionList
		if err := l.c.Reader.List(l.ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %ss in namespace %s: %w", kind, ns, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	case ComponentKind:
		var list v1beta1.ComponentDefinitionList
		if err := l.c.Reader.List(l.ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %ss in namespace %s: %w", kind, ns, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	default:
		_, err := kind.New()
		return nil, err
	}
	return out, nil
}

// Ready is a definition object's Ready condition as of its current
// generation: nil until the controller has looked at that generation (or
// when obj is not a definition), else True when its template compiles and
// False, saying why, when it does not.
func Ready(obj client.Object) *metav1.Condition {
	st, err := StatusOf(obj)
	if err != nil {
		return nil
	}
	c := meta.FindStatusCondition(*st.Conditions, v1beta1.ConditionReady)
	if c == nil || c.ObservedGeneration != obj.GetGeneration() {
		return nil
	}
	return c
}
