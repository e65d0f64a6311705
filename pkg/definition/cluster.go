package definition

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// DefaultSystemNamespace is where definitions shared by every namespace
// live; community addons install theirs there.
const DefaultSystemNamespace = "vela-system"

// Cluster finds definitions through a reader (the controller's informer
// cache): the run's namespace first, then the system namespace. The
// evaluator caches compiled templates by content, so a definition whose
// generation changed is compiled again and an unchanged one is not.
//
// Live, when set, is read (straight from the API server) only when Reader
// has the name in no namespace: a definition applied just before the run
// that uses it may not have reached the cache yet, and failing the run
// for a step type that exists would be wrong.
type Cluster struct {
	Reader          client.Reader
	Live            client.Reader
	SystemNamespace string
}

// For returns the lookup of step types (WorkflowStepDefinitions) for runs
// in namespace ns.
func (c Cluster) For(ctx context.Context, ns string) Lookup {
	return c.ForKind(ctx, ns, StepKind)
}

// ForKind returns the lookup of definitions of kind k for runs in
// namespace ns.
func (c Cluster) ForKind(ctx context.Context, ns string, k Kind) Lookup {
	return Lookup{ctx: ctx, c: c, ns: ns, kind: k}
}

// Lookup resolves the definitions of one kind for one namespace.
type Lookup struct {
	ctx  context.Context
	c    Cluster
	ns   string
	kind Kind
}

// Namespaces are the namespaces a lookup searches, in order: the run's,
// then the system namespace (DefaultSystemNamespace when unset).
func (l Lookup) Namespaces() []string {
	sys := l.c.SystemNamespace
	if sys == "" {
		sys = DefaultSystemNamespace
	}
	if sys == l.ns {
		return []string{l.ns}
	}
	return []string{l.ns, sys}
}

// Lookup implements engine.Definitions: it returns the definition named
// name, of the lookup's kind, from the first namespace that has one.
func (l Lookup) Lookup(name string) (eval.Definition, error) {
	kind := l.kind
	if kind == "" {
		kind = StepKind
	}
	namespaces := l.Namespaces()
	def, found, err := l.find(l.c.Reader, kind, name, namespaces)
	if err == nil && !found && l.c.Live != nil {
		def, found, err = l.find(l.c.Live, kind, name, namespaces)
	}
	if err != nil || found {
		return def, err
	}
	return eval.Definition{}, &NotFoundError{Kind: kind, Name: name, Namespaces: namespaces}
}

// find reads the definition name of kind through r from the first of
// namespaces that has it.
func (l Lookup) find(r client.Reader, kind Kind, name string, namespaces []string) (eval.Definition, bool, error) {
	for _, ns := range namespaces {
		def, err := kind.New()
		if err != nil {
			return eval.Definition{}, false, err
		}
		err = r.Get(l.ctx, types.NamespacedName{Namespace: ns, Name: name}, def)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return eval.Definition{}, false, fmt.Errorf("reading %s %s/%s: %w", kind, ns, name, err)
		}
		src, err := FromObject(def)
		if err != nil {
			return eval.Definition{}, false, err
		}
		return src.Definition, true, nil
	}
	return eval.Definition{}, false, nil
}

// NotFoundError is a lookup that found no definition of its name in any
// namespace it searched: one that a retry does not fix until someone
// applies the definition.
type NotFoundError struct {
	Kind       Kind
	Name       string
	Namespaces []string
}

func (e *NotFoundError) Error() string {
	if len(e.Namespaces) == 0 {
		return fmt.Sprintf("no %s %q", e.Kind, e.Name)
	}
	return fmt.Sprintf("no %s %q in namespace %s", e.Kind, e.Name, quoted(e.Namespaces))
}

// quoted joins namespaces as "a" or "b".
func quoted(namespaces []string) string {
	q := make([]string, len(namespaces))
	for i, ns := range namespaces {
		q[i] = strconv.Quote(ns)
	}
	return strings.Join(q, " or ")
}
