package clusters

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/opcache"
	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// Defaults for the zero fields of Options.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxClients = 256
)

// Options are what a Registry is built from.
type Options struct {
	// SystemNamespace holds the cluster Secrets (required).
	SystemNamespace string
	// Local resolves the local names "" and "local" (required).
	Local kube.Clusters
	// Secrets returns the reader a step's cluster Secret is read through,
	// with a direct GET: the step's identity's client, or in a
	// single-tenant controller an uncached reader of its own (required).
	Secrets func(ctx context.Context, step op.Step) (client.Reader, error)
	// SingleTenant makes remote clients act with the Secret's credentials;
	// otherwise they impersonate the step's ServiceAccount user.
	SingleTenant bool
	// DefaultServiceAccount is the identity of a step that names none
	// (default tenancy.DefaultServiceAccount).
	DefaultServiceAccount string
	// Scheme is the remote clients' scheme (nil: client-go's).
	Scheme *runtime.Scheme
	// Timeout bounds each request to a remote cluster (default
	// DefaultTimeout).
	Timeout time.Duration
	// MaxClients bounds the identities' clients kept per cluster (default
	// DefaultMaxClients).
	MaxClients int
	// Cache, when set, makes reads go through a watched cache per cluster
	// connection once Start runs (see Cache).
	Cache *Cache
	// Limits paces the requests sent to named clusters, by name (see
	// throttle); a cluster without one is not paced. The local names
	// cannot be limited here.
	Limits map[string]ratelimit.Limit
	// MaxWait is how long a request waits for its turn under its
	// cluster's limit (default DefaultMaxWait); one further away fails,
	// retryable.
	MaxWait time.Duration
}

// Registry resolves cluster names to clients: local names to Options.Local,
// any other to the cluster its Secret describes (see the package doc).
type Registry struct {
	o Options

	mu       sync.Mutex
	ctx      context.Context // Start's, nil before it
	clusters map[string]*connection
	// throttles are Options.Limits', by cluster name; fixed after New.
	throttles map[string]*throttle
}

var _ kube.Clusters = (*Registry)(nil)

// New returns a Registry.
func New(o Options) (*Registry, error) {
	if o.SystemNamespace == "" || o.Local == nil || o.Secrets == nil {
		return nil, errors.New("clusters: SystemNamespace, Local and Secrets are required")
	}
	if o.DefaultServiceAccount == "" {
		o.DefaultServiceAccount = tenancy.DefaultServiceAccount
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	r := &Registry{o: o, clusters: map[string]*connection{}, throttles: map[string]*throttle{}}
	now := time.Now()
	for name, l := range o.Limits {
		if name == "" || name == kube.LocalCluster {
			return nil, fmt.Errorf("clusters: rate limit of cluster %q: the local cluster cannot be limited here", name)
		}
		t, err := newThrottle(name, l, o.MaxWait, now)
		if err != nil {
			return nil, fmt.Errorf("clusters: %w", err)
		}
		r.throttles[name] = t
	}
	return r, nil
}

// connection is one cluster as one version of its Secret describes it.
type connection struct {
	resourceVersion string
	config          *rest.Config // holds the credentials: never format it
	http            *http.Client
	mapper          meta.RESTMapper

	// clients are the clients by the user they impersonate ("" for none).
	clients map[string]client.Client

	// With Options.Cache, once started: the informer-backed reader of
	// this connection, the client reading through it with the Secret's
	// credentials, the access reviews that let a step's user read
	// through it (nil when single-tenant), and what stops the reader.
	reader *opcache.Reader
	shared client.Client
	ids    *tenancy.Factory
	cancel context.CancelFunc
}

// Cluster implements kube.Clusters.
func (r *Registry) Cluster(ctx context.Context, step op.Step, name string) (client.Client, error) {
	if name == "" || name == kube.LocalCluster {
		return r.o.Local.Cluster(ctx, step, name)
	}
	secrets, err := r.o.Secrets(ctx, step)
	if err != nil {
		return nil, err
	}
	var s corev1.Secret
	err = secrets.Get(ctx, client.ObjectKey{Namespace: r.o.SystemNamespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		r.forget(name)
		return nil, op.Permanentf("unknown cluster %q: no cluster Secret %s/%s", name, r.o.SystemNamespace, name)
	case err != nil:
		return nil, fmt.Errorf("cluster %q: reading its Secret %s/%s: %w", name, r.o.SystemNamespace, name, err)
	}
	var id *tenancy.Identity
	if !r.o.SingleTenant {
		i := tenancy.Of(step, r.o.DefaultServiceAccount)
		id = &i
	}
	return r.client(name, &s, id)
}

// forget drops the connection of a cluster whose Secret is gone.
func (r *Registry) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if conn := r.clusters[name]; conn != nil {
		conn.close()
	}
	delete(r.clusters, name)
}

// client returns the client of cluster name for id (nil: the Secret's own
// credentials), from the connection of the Secret's resourceVersion.
func (r *Registry) client(name string, s *corev1.Secret, id *tenancy.Identity) (client.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	user := ""
	if id != nil {
		user = id.User()
	}
	conn, ok := r.clusters[name]
	if !ok || conn.resourceVersion != s.ResourceVersion {
		creds, err := Parse(s)
		if err != nil {
			return nil, op.Permanentf("cluster %q: %w", name, err)
		}
		next, err := r.connect(name, creds, s.ResourceVersion)
		if err != nil {
			return nil, err
		}
		if err := r.cache(name, next); err != nil {
			return nil, err
		}
		if conn != nil {
			conn.close()
		}
		conn = next
		r.clusters[name] = conn
	} else if conn.reader == nil {
		// Made before Start: it caches from now on, with clients that
		// read through the cache.
		if err := r.cache(name, conn); err != nil {
			return nil, err
		}
		if conn.reader != nil {
			clear(conn.clients)
		}
	}
	if conn.shared != nil && user == "" {
		return conn.shared, nil
	}
	if c, ok := conn.clients[user]; ok {
		return c, nil
	}
	hc := conn.http
	if user != "" {
		hc = &http.Client{
			Transport: transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{UserName: user}, conn.http.Transport),
			Timeout:   conn.http.Timeout,
		}
	}
	c, err := client.New(conn.config, client.Options{HTTPClient: hc, Scheme: r.o.Scheme, Mapper: conn.mapper})
	if err != nil {
		return nil, fmt.Errorf("cluster %q: client: %w", name, err)
	}
	if conn.ids != nil && id != nil {
		reads, err := conn.ids.For(*id)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", name, err)
		}
		c = cachedReads{Client: c, reads: reads}
	}
	if user != "" {
		c = identityClient{Client: c, cluster: name, user: user}
	}
	if len(conn.clients) >= r.o.MaxClients {
		for k := range conn.clients { // any one: building a client again is cheap
			delete(conn.clients, k)
			break
		}
	}
	conn.clients[user] = c
	return c, nil
}

// connect builds the connection creds describe. Nothing reaches the
// cluster yet: discovery happens on the first request that needs it.
func (r *Registry) connect(name string, creds Credentials, resourceVersion string) (*connection, error) {
	cfg := creds.restConfig()
	cfg.Timeout = r.o.Timeout
	endpoint := creds.Endpoint
	throttle := r.throttles[name]
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		rt = unreachable{name: name, endpoint: endpoint, next: rt}
		if throttle != nil {
			rt = throttled{t: throttle, next: rt}
		}
		return rt
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		// The TLS material did not load: say which, not what it holds.
		return nil, op.Permanentf("cluster %q: the CA, certificate or key in its Secret does not load", name)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: discovery client for %s: %w", name, endpoint, err)
	}
	return &connection{resourceVersion: resourceVersion, config: cfg, http: hc, mapper: mapper,
		clients: map[string]client.Client{}}, nil
}

// unreachable names the cluster in the errors of requests that got no
// answer from it; they stay retryable.
type unreachable struct {
	name, endpoint string
	next           http.RoundTripper
}

func (u unreachable) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := u.next.RoundTrip(req)
	if err != nil {
		return nil, &UnreachableError{Cluster: u.name, Endpoint: u.endpoint, Err: err}
	}
	return resp, nil
}

// UnreachableError is a request to a named cluster that got no answer.
type UnreachableError struct {
	Cluster, Endpoint string
	Err               error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cluster %q unreachable at %s: %v", e.Cluster, e.Endpoint, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }
