package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Defaults for the zero fields of Options.
const (
	DefaultAllowedTTL = time.Minute
	DefaultDeniedTTL  = 10 * time.Second
	DefaultMaxReviews = 4096
	DefaultMaxClients = 1024
	// selfTTL is how long the controller's answer about its own rights
	// (may it watch a resource, so may the shared reader serve it) is kept.
	selfTTL = 10 * time.Minute
	// maxSelfReviews bounds those answers: two per resource ops read.
	maxSelfReviews = 512
)

// Options are what a Factory is built from.
type Options struct {
	// Config reaches the API server as the controller.
	Config *rest.Config
	// HTTPClient is the controller's HTTP client for Config; every
	// identity's requests go through its transport, and so share its
	// connections. Nil builds one from Config.
	HTTPClient *http.Client
	// Reader is the shared reader (the controller's informer cache) that
	// reads of non-Secret objects go through once a review allowed them.
	Reader client.Reader
	// Client is an uncached client acting as the controller: it sends the
	// access reviews, and its scheme and RESTMapper are every identity's.
	Client client.Client
	// DefaultServiceAccount is the identity of a step that names none
	// (default DefaultServiceAccount).
	DefaultServiceAccount string
	// AllowedTTL and DeniedTTL are how long review answers are kept
	// (defaults DefaultAllowedTTL, DefaultDeniedTTL); MaxReviews bounds
	// how many are (default DefaultMaxReviews).
	AllowedTTL, DeniedTTL time.Duration
	MaxReviews            int
	// MaxClients bounds the identities whose clients are kept (default
	// DefaultMaxClients).
	MaxClients int
	// Now is the clock of the review cache (default time.Now).
	Now func() time.Time
}

// Factory hands out clients that act as identities.
type Factory struct {
	o       Options
	reviews *reviews
	// self holds the controller's answers about itself, apart, so that
	// identities' answers never push them out.
	self *reviews

	mu      sync.Mutex
	clients map[Identity]*identityClient
}

// New returns a Factory.
func New(o Options) (*Factory, error) {
	if o.Config == nil || o.Reader == nil || o.Client == nil {
		return nil, errors.New("tenancy: Config, Reader and Client are required")
	}
	if o.HTTPClient == nil {
		hc, err := rest.HTTPClientFor(o.Config)
		if err != nil {
			return nil, fmt.Errorf("tenancy: HTTP client: %w", err)
		}
		o.HTTPClient = hc
	}
	if o.DefaultServiceAccount == "" {
		o.DefaultServiceAccount = DefaultServiceAccount
	}
	if o.AllowedTTL <= 0 {
		o.AllowedTTL = DefaultAllowedTTL
	}
	if o.DeniedTTL <= 0 {
		o.DeniedTTL = DefaultDeniedTTL
	}
	if o.MaxReviews <= 0 {
		o.MaxReviews = DefaultMaxReviews
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Factory{o: o, reviews: newReviews(o.Client, o.AllowedTTL, o.DeniedTTL, o.MaxReviews, o.Now),
		self:    newReviews(o.Client, selfTTL, selfTTL, maxSelfReviews, o.Now),
		clients: map[Identity]*identityClient{}}, nil
}

// DefaultServiceAccount is the identity of a step that names none.
func (f *Factory) DefaultServiceAccount() string { return f.o.DefaultServiceAccount }

// For returns the client that acts as id. An identity that cannot be a
// ServiceAccount is a permanent error.
func (f *Factory) For(id Identity) (client.Client, error) {
	if id.Name == "" {
		id.Name = f.o.DefaultServiceAccount
	}
	if err := id.check(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.clients[id]; ok {
		return c, nil
	}
	// The impersonation header goes on top of the controller's own
	// transport (its credentials, its connection pool).
	hc := &http.Client{
		Transport: transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{UserName: id.User()}, f.o.HTTPClient.Transport),
		Timeout:   f.o.HTTPClient.Timeout,
	}
	direct, err := client.New(f.o.Config, client.Options{
		HTTPClient: hc, Scheme: f.o.Client.Scheme(), Mapper: f.o.Client.RESTMapper(),
	})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", id, err)
	}
	if len(f.clients) >= f.o.MaxClients {
		for k := range f.clients { // any one: building a client again is cheap
			delete(f.clients, k)
			break
		}
	}
	c := &identityClient{Client: direct, id: id, f: f}
	f.clients[id] = c
	return c, nil
}

// allowed asks whether id may verb the resource in ns, from the cache of
// reviews when it can.
func (f *Factory) allowed(ctx context.Context, id Identity, verb, group, resource, ns string) (bool, string, error) {
	return f.reviews.allowed(ctx, question{user: id.User(), verb: verb, group: group, resource: resource, ns: ns}, id.Groups())
}

// shared reports whether the shared reader can serve the resource: the
// controller itself may list and watch it in every namespace.
func (f *Factory) shared(ctx context.Context, group, resource string) (bool, error) {
	for _, verb := range []string{"list", "watch"} {
		ok, _, err := f.self.allowed(ctx, question{verb: verb, group: group, resource: resource}, nil)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}
