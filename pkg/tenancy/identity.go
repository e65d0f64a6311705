package tenancy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// DefaultServiceAccount is the ServiceAccount a run acts as when neither
// it nor its Workflow names one. The chart creates it, with a RoleBinding
// to the ClusterRole of the same name, in the namespaces it is told to.
const DefaultServiceAccount = "stepflow-runner"

// Identity is a ServiceAccount a run acts as.
type Identity struct {
	Namespace string
	Name      string
}

// Of is the identity of a step: its ServiceAccount in its namespace, the
// default when it names none.
func Of(step op.Step, defaultName string) Identity {
	name := step.ServiceAccount
	if name == "" {
		name = defaultName
	}
	return Identity{Namespace: step.Namespace, Name: name}
}

// Resolve picks the ServiceAccount a run acts as: the run's own, else its
// Workflow's, else def.
func Resolve(run, workflow, def string) string {
	for _, s := range []string{run, workflow} {
		if s != "" {
			return s
		}
	}
	return def
}

// User is the name the API server knows the identity by.
func (id Identity) User() string {
	return "system:serviceaccount:" + id.Namespace + ":" + id.Name
}

// Groups are the groups the API server puts the identity in.
func (id Identity) Groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + id.Namespace, "system:authenticated"}
}

func (id Identity) String() string { return "serviceaccount " + id.Namespace + "/" + id.Name }

// check reports an identity that cannot be a ServiceAccount, permanently.
func (id Identity) check() error {
	if id.Namespace == "" {
		return op.Permanentf("serviceaccount %q: the step has no namespace to act in", id.Name)
	}
	for what, v := range map[string]string{"name": id.Name, "namespace": id.Namespace} {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			return op.Permanentf("serviceaccount %s/%s: %s %q is not valid: %s", id.Namespace, id.Name, what, v, strings.Join(errs, "; "))
		}
	}
	return nil
}

// Denied is the error of a request the identity may not make.
type Denied struct {
	Identity Identity
	// Verb is the API verb: get, list, create, patch, delete, ...
	Verb string
	// Resource is the plural resource, with its group when it has one
	// ("deployments.apps").
	Resource string
	// Namespace is "" for a cluster-scoped object, or a list across all
	// namespaces; Name is "" for a list or a collection.
	Namespace, Name string
	// Reason is the API server's or the review's own reason, if any.
	Reason string
}

func (d *Denied) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s may not %s %s", d.Identity, d.Verb, d.Resource)
	if d.Name != "" {
		fmt.Fprintf(&b, " %q", d.Name)
	}
	switch {
	case d.Namespace != "":
		fmt.Fprintf(&b, " in namespace %q", d.Namespace)
	case d.Name == "":
		b.WriteString(" cluster-wide")
	}
	return b.String()
}
