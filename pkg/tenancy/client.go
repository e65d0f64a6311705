package tenancy

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// identityClient acts as one identity: the embedded client sends every
// request impersonating it; Get and List may be served by the shared
// reader instead once a review allowed them.
type identityClient struct {
	client.Client
	id Identity
	f  *Factory
}

var _ client.Client = (*identityClient)(nil)

var secrets = schema.GroupResource{Resource: "secrets"}

// Get reads obj as the identity.
func (c *identityClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	gr, err := c.resource(obj)
	if err != nil {
		return err
	}
	if gr != secrets {
		shared, err := c.viaShared(ctx, "get", gr, key.Namespace)
		if err != nil {
			return err
		}
		if shared {
			return c.f.o.Reader.Get(ctx, key, obj, opts...)
		}
	}
	return c.denied(c.Client.Get(ctx, key, obj, opts...), "get", gr, key.Namespace, key.Name)
}

// List lists as the identity.
func (c *identityClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	gr, err := c.resource(list)
	if err != nil {
		return err
	}
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if gr != secrets {
		shared, err := c.viaShared(ctx, "list", gr, lo.Namespace)
		if err != nil {
			return err
		}
		if shared {
			return c.f.o.Reader.List(ctx, list, opts...)
		}
	}
	return c.denied(c.Client.List(ctx, list, opts...), "list", gr, lo.Namespace, "")
}

// viaShared reports whether a read goes through the shared reader: the
// identity may make it (by review) and the reader can serve the kind.
// When the review says no, the read is sent as the identity, and the API
// server decides: a rule with resourceNames passes there and not in a
// review without a name.
func (c *identityClient) viaShared(ctx context.Context, verb string, gr schema.GroupResource, ns string) (bool, error) {
	ok, _, err := c.f.allowed(ctx, c.id, verb, gr.Group, gr.Resource, ns)
	if err != nil || !ok {
		return false, err
	}
	return c.f.shared(ctx, gr.Group, gr.Resource)
}

func (c *identityClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return c.write(obj, "create", c.Client.Create(ctx, obj, opts...))
}

func (c *identityClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return c.write(obj, "update", c.Client.Update(ctx, obj, opts...))
}

func (c *identityClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	return c.write(obj, "patch", c.Client.Patch(ctx, obj, patch, opts...))
}

func (c *identityClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return c.write(obj, "delete", c.Client.Delete(ctx, obj, opts...))
}

func (c *identityClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	err := c.Client.DeleteAllOf(ctx, obj, opts...)
	if err == nil || !apierrors.IsForbidden(err) {
		return err
	}
	do := (&client.DeleteAllOfOptions{}).ApplyOptions(opts)
	gr, rerr := c.resource(obj)
	if rerr != nil {
		return err
	}
	return c.denied(err, "deletecollection", gr, do.Namespace, "")
}

// write turns a 403 to a write of obj into a Denied.
func (c *identityClient) write(obj client.Object, verb string, err error) error {
	if err == nil || !apierrors.IsForbidden(err) {
		return err
	}
	gr, rerr := c.resource(obj)
	if rerr != nil {
		return err
	}
	return c.denied(err, verb, gr, obj.GetNamespace(), obj.GetName())
}

// serverVerb finds the verb the API server's authorizer refused in its
// message ("... cannot create resource ..."), which may not be the
// request's own: a server-side apply that creates is refused "create".
var serverVerb = regexp.MustCompile(`cannot (\w+) resource`)

// denied turns a 403 into a permanent Denied naming the identity, the
// verb and the object; any other error passes unchanged.
func (c *identityClient) denied(err error, verb string, gr schema.GroupResource, ns, name string) error {
	if err == nil || !apierrors.IsForbidden(err) {
		return err
	}
	if strings.Contains(err.Error(), "cannot impersonate") {
		// Not the identity's denial: the install is missing a right of the
		// controller's, which an operator can add; so not permanent.
		return fmt.Errorf("the controller may not act as %s (it needs impersonate on serviceaccounts): %w", c.id, err)
	}
	if m := serverVerb.FindStringSubmatch(err.Error()); m != nil {
		verb = m[1]
	}
	return op.Permanent(&Denied{Identity: c.id, Verb: verb, Resource: gr.String(), Namespace: ns, Name: name, Reason: err.Error()})
}

// resource is the group and plural resource of obj (or of a list's items).
func (c *identityClient) resource(obj runtime.Object) (schema.GroupResource, error) {
	gvk, err := c.GroupVersionKindFor(obj)
	if err != nil {
		return schema.GroupResource{}, err
	}
	if _, isList := obj.(client.ObjectList); isList {
		gvk.Kind = trimList(gvk.Kind)
	}
	m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return schema.GroupResource{}, err
	}
	return m.Resource.GroupResource(), nil
}

func trimList(kind string) string {
	if len(kind) > 4 && kind[len(kind)-4:] == "List" {
		return kind[:len(kind)-4]
	}
	return kind
}
