package clusters

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// identityClient is a remote client acting as a step's user. A request the
// remote cluster forbids that user is a denial of the step, permanent as a
// local one is (pkg/tenancy): the same request as the same identity cannot
// pass until someone changes RBAC there. A request forbidden because the
// Secret's credentials may not impersonate is the install's fault and stays
// retryable. Subresource requests are not classified.
type identityClient struct {
	client.Client
	cluster, user string
}

func (c identityClient) denied(err error) error {
	if err == nil || !apierrors.IsForbidden(err) {
		return err
	}
	if strings.Contains(err.Error(), "cannot impersonate") {
		return fmt.Errorf("cluster %q: the credentials in its Secret may not impersonate %s there: %w", c.cluster, c.user, err)
	}
	return op.Permanent(fmt.Errorf("cluster %q denies %s: %w", c.cluster, c.user, err))
}

func (c identityClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.denied(c.Client.Get(ctx, key, obj, opts...))
}

func (c identityClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return c.denied(c.Client.List(ctx, list, opts...))
}

func (c identityClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return c.denied(c.Client.Create(ctx, obj, opts...))
}

func (c identityClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return c.denied(c.Client.Update(ctx, obj, opts...))
}

func (c identityClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	return c.denied(c.Client.Patch(ctx, obj, patch, opts...))
}

func (c identityClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return c.denied(c.Client.Delete(ctx, obj, opts...))
}

func (c identityClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	return c.denied(c.Client.DeleteAllOf(ctx, obj, opts...))
}

var _ client.Client = identityClient{}
