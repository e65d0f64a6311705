package clusters

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/stepflow-dev/stepflow/pkg/opcache"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// Cache makes the reads of kube ops on named clusters go through an
// informer-backed reader per cluster connection (pkg/opcache), whose
// events reach OnEvent: a step waiting on a remote object is woken by its
// watch event instead of polling.
type Cache struct {
	// Reader bounds each connection's reader (IdleTimeout, MaxInformers,
	// ForbiddenRetry, SyncTimeout, Now); its Config, HTTPClient, Scheme,
	// Mapper, Direct, OnEvent and InUse are the connection's own.
	Reader opcache.Options
	// OnEvent hears every object a reader's informers add, update or
	// delete, with the cluster's name.
	OnEvent func(cluster string, obj client.Object)
	// InUse keeps an idle scope of a cluster running while it reports
	// true (a step still waits on it).
	InUse func(cluster string, s opcache.Scope) bool
}

var (
	_ manager.Runnable               = (*Registry)(nil)
	_ manager.LeaderElectionRunnable = (*Registry)(nil)
)

// Start runs the connections' readers until ctx ends (Options.Cache);
// before it, and without Options.Cache, every remote read is a request.
// It implements manager.Runnable.
func (r *Registry) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.ctx != nil {
		r.mu.Unlock()
		return errors.New("clusters: started twice")
	}
	r.ctx = ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, conn := range r.clusters {
		conn.close()
		delete(r.clusters, name)
	}
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the
// readers serve whoever runs ops.
func (r *Registry) NeedLeaderElection() bool { return false }

// Watch makes sure the reader of cluster's current connection watches gvk
// in namespace, so Cache.OnEvent hears of its objects. A cluster with no
// connection yet, or no reader, is not watched: its steps poll.
func (r *Registry) Watch(cluster string, gvk schema.GroupVersionKind, namespace string) error {
	r.mu.Lock()
	conn := r.clusters[cluster]
	r.mu.Unlock()
	if conn == nil || conn.reader == nil {
		return nil
	}
	if err := conn.reader.Watch(gvk, namespace); err != nil {
		return fmt.Errorf("cluster %q: watching %s in %q: %w", cluster, gvk, namespace, err)
	}
	return nil
}

// Scopes lists what the reader of cluster's connection caches now.
func (r *Registry) Scopes(cluster string) []opcache.Scope {
	r.mu.Lock()
	conn := r.clusters[cluster]
	r.mu.Unlock()
	if conn == nil || conn.reader == nil {
		return nil
	}
	return conn.reader.Scopes()
}

// cache gives conn its reader, when the registry caches and runs. The
// reader lives as long as the connection: a rotated Secret's new
// connection starts a new one and stops the old. The caller holds r.mu.
func (r *Registry) cache(name string, conn *connection) error {
	c := r.o.Cache
	if c == nil || r.ctx == nil || r.ctx.Err() != nil {
		return nil
	}
	scheme := r.o.Scheme
	if scheme == nil {
		scheme = clientgoscheme.Scheme
	}
	direct, err := client.New(conn.config, client.Options{HTTPClient: conn.http, Scheme: scheme, Mapper: conn.mapper})
	if err != nil {
		return fmt.Errorf("cluster %q: client: %w", name, err)
	}
	ro := c.Reader
	ro.Config, ro.HTTPClient, ro.Scheme, ro.Mapper, ro.Direct = conn.config, conn.http, scheme, conn.mapper, direct
	ro.OnEvent, ro.InUse = nil, nil
	if c.OnEvent != nil {
		ro.OnEvent = func(obj client.Object) { c.OnEvent(name, obj) }
	}
	if c.InUse != nil {
		ro.InUse = func(s opcache.Scope) bool { return c.InUse(name, s) }
	}
	reader, err := opcache.New(ro)
	if err != nil {
		return fmt.Errorf("cluster %q: %w", name, err)
	}
	shared, err := client.New(conn.config, client.Options{HTTPClient: conn.http, Scheme: scheme, Mapper: conn.mapper,
		Cache: &client.CacheOptions{Reader: reader, Unstructured: true}})
	if err != nil {
		return fmt.Errorf("cluster %q: client: %w", name, err)
	}
	if !r.o.SingleTenant {
		// Reviews are sent to the remote cluster with the Secret's
		// credentials, about the step's user there.
		ids, err := tenancy.New(tenancy.Options{Config: conn.config, HTTPClient: conn.http, Reader: shared, Client: direct,
			DefaultServiceAccount: r.o.DefaultServiceAccount})
		if err != nil {
			return fmt.Errorf("cluster %q: %w", name, err)
		}
		conn.ids = ids
	}
	ctx, cancel := context.WithCancel(r.ctx)
	go func() { _ = reader.Start(ctx) }()
	conn.reader, conn.shared, conn.cancel = reader, shared, cancel
	return nil
}

// close stops the connection's reader, if it has one.
func (c *connection) close() {
	if c.cancel != nil {
		c.cancel()
	}
}

// cachedReads serves a step's reads on a remote cluster from the shared
// reader once an access review on that cluster allowed the step's user
// (pkg/tenancy, with the connection's reader as the shared one); the
// embedded client sends everything else, impersonating the user. A read
// the review denies, or whose review the Secret's credentials may not
// send, is sent as the user too, and the remote API server decides (and
// its answer is classified as any other: a permanent denial, or
// credentials that may not impersonate).
type cachedReads struct {
	client.Client
	reads client.Reader
}

func (c cachedReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.reads.Get(ctx, key, obj, opts...)
	if refused(err) {
		return c.Client.Get(ctx, key, obj, opts...)
	}
	return err
}

func (c cachedReads) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	err := c.reads.List(ctx, list, opts...)
	if refused(err) {
		return c.Client.List(ctx, list, opts...)
	}
	return err
}

// refused is a read the cached path would not make: denied by review or
// by the API server, or a review the credentials may not send.
func refused(err error) bool {
	var denied *tenancy.Denied
	return err != nil && (errors.As(err, &denied) || apierrors.IsForbidden(err))
}

var _ client.Client = cachedReads{}
