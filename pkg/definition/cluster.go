package definition

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// DefaultSystemNamespace is where definitions shared by every namespace
// live; community addons install theirs there.
const DefaultSystemNamespace = "vela-system"

// Cluster finds WorkflowStepDefinitions through a reader (the controller's
// informer cache): the run's namespace first, then the system namespace.
// The evaluator caches compiled templates by content, so a definition whose
// generation changed is compiled again and an unchanged one is not.
type Cluster struct {
	Reader          client.Reader
	SystemNamespace string
}

// For returns the lookup for runs in namespace ns.
func (c Cluster) For(ctx context.Context, ns string) Lookup {
	return Lookup{ctx: ctx, c: c, ns: ns}
}

// Lookup resolves step types for one namespace.
type Lookup struct {
	ctx context.Context
	c   Cluster
	ns  string
}

// Lookup implements engine.Definitions.
func (l Lookup) Lookup(stepType string) (eval.Definition, error) {
	sys := l.c.SystemNamespace
	if sys == "" {
		sys = DefaultSystemNamespace
	}
	namespaces := []string{l.ns}
	if sys != l.ns {
		namespaces = append(namespaces, sys)
	}
	for _, ns := range namespaces {
		var def v1beta1.WorkflowStepDefinition
		err := l.c.Reader.Get(l.ctx, types.NamespacedName{Namespace: ns, Name: stepType}, &def)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return eval.Definition{}, fmt.Errorf("reading WorkflowStepDefinition %s/%s: %w", ns, stepType, err)
		}
		src, err := FromObject(&def)
		if err != nil {
			return eval.Definition{}, err
		}
		return src.Definition, nil
	}
	return eval.Definition{}, fmt.Errorf("no WorkflowStepDefinition %q in namespace %q or %q", stepType, l.ns, sys)
}
