package opcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Defaults of Options.
const (
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultMaxInformers   = 64
	DefaultForbiddenRetry = 5 * time.Minute
	DefaultSyncTimeout    = 30 * time.Second
)

// Scope is what one informer holds: one kind in one namespace, or one
// cluster-scoped kind (Namespace "").
type Scope struct {
	GVK       schema.GroupVersionKind
	Namespace string
}

func (s Scope) String() string {
	if s.Namespace == "" {
		return s.GVK.String()
	}
	return s.GVK.String() + " in " + s.Namespace
}

// Options configure a Reader. Config, Scheme, Mapper and Direct are
// required.
type Options struct {
	// Config reaches the API server (with HTTPClient, when set, as the
	// transport), for the informers.
	Config     *rest.Config
	HTTPClient *http.Client
	Scheme     *runtime.Scheme
	Mapper     meta.RESTMapper
	// Direct reads from the API server: Secrets, uncacheable reads, and
	// scopes whose informer was refused.
	Direct client.Reader
	// IdleTimeout stops a scope nobody read or waited on for this long
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxInformers bounds the scopes running at once (default
	// DefaultMaxInformers).
	MaxInformers int
	// ForbiddenRetry is how long a scope whose informer was refused reads
	// directly before an informer is tried again (default
	// DefaultForbiddenRetry).
	ForbiddenRetry time.Duration
	// SyncTimeout bounds how long a read waits for its scope's first list;
	// past it, the read goes to the API server (default
	// DefaultSyncTimeout).
	SyncTimeout time.Duration
	// OnEvent, when set, receives every object an informer adds, updates or
	// deletes.
	OnEvent func(client.Object)
	// InUse, when set, keeps an idle scope running while it reports true:
	// a step still waits on it.
	InUse func(Scope) bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Reader is the kube ops' client.Reader; see the package doc. Start runs it.
type Reader struct {
	o Options

	mu     sync.Mutex
	ctx    context.Context // Start's, nil before it
	scopes map[Scope]*scope
	denied map[Scope]time.Time // refused scopes, until when
}

var (
	_ client.Reader                  = (*Reader)(nil)
	_ manager.Runnable               = (*Reader)(nil)
	_ manager.LeaderElectionRunnable = (*Reader)(nil)
)

// scope is one running informer.
type scope struct {
	key      Scope
	cache    cache.Cache
	informer cache.Informer
	cancel   context.CancelFunc
	gone     chan struct{} // closed when the scope stops (idle, evicted, refused)
	once     sync.Once
	lastUsed time.Time
}

// stop ends the scope's informer; reads waiting for it to sync go to the
// API server.
func (s *scope) stop() {
	s.once.Do(func() {
		s.cancel()
		close(s.gone)
	})
}

// New returns a Reader; it caches nothing until Start runs.
func New(o Options) (*Reader, error) {
	if o.Config == nil || o.Scheme == nil || o.Mapper == nil || o.Direct == nil {
		return nil, errors.New("opcache: Config, Scheme, Mapper and Direct are required")
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxInformers <= 0 {
		o.MaxInformers = DefaultMaxInformers
	}
	if o.ForbiddenRetry <= 0 {
		o.ForbiddenRetry = DefaultForbiddenRetry
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reader{o: o, scopes: map[Scope]*scope{}, denied: map[Scope]time.Time{}}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the reader
// serves whoever runs ops.
func (r *Reader) NeedLeaderElection() bool { return false }

// Start caches until ctx ends, stopping idle scopes on the way; then it
// stops every scope. It implements manager.Runnable.
func (r *Reader) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.ctx != nil {
		r.mu.Unlock()
		return errors.New("opcache: started twice")
	}
	r.ctx = ctx
	r.mu.Unlock()
	every := r.o.IdleTimeout / 4
	if every > time.Minute {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for k, s := range r.scopes {
				s.stop()
				delete(r.scopes, k)
			}
			r.mu.Unlock()
			return nil
		case <-t.C:
			r.Sweep()
		}
	}
}

// Sweep stops the scopes idle for IdleTimeout that InUse does not hold,
// and forgets refusals that are over. Start calls it periodically.
func (r *Reader) Sweep() {
	now := r.o.Now()
	r.mu.Lock()
	var idle []*scope
	for _, s := range r.scopes {
		if now.Sub(s.lastUsed) >= r.o.IdleTimeout {
			idle = append(idle, s)
		}
	}
	for k, until := range r.denied {
		if !now.Before(until) {
			delete(r.denied, k)
		}
	}
	r.mu.Unlock()
	for _, s := range idle {
		// InUse may take the caller's own locks: call it outside ours.
		if r.o.InUse != nil && r.o.InUse(s.key) {
			r.mu.Lock()
			s.lastUsed = now
			r.mu.Unlock()
			continue
		}
		r.drop(s)
	}
}

// Scopes lists the running scopes, sorted.
func (r *Reader) Scopes() []Scope {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Scope, 0, len(r.scopes))
	for k := range r.scopes {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Watch makes sure the scope of gvk in namespace is running, so OnEvent
// hears of its objects, and counts as a use; it does not wait for the
// informer's first list. A namespaced kind with no namespace is not
// watched (such lists are read directly).
func (r *Reader) Watch(gvk schema.GroupVersionKind, namespace string) error {
	if isSecret(gvk) {
		return nil
	}
	key, cacheable, err := r.scopeOf(gvk, namespace)
	if err != nil || !cacheable {
		return err
	}
	_, err = r.use(key)
	return err
}

// Get implements client.Reader.
func (r *Reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	gvk, err := apiutil.GVKForObject(obj, r.o.Scheme)
	if err != nil {
		return err
	}
	if isSecret(gvk) || len(opts) > 0 {
		return r.o.Direct.Get(ctx, key, obj, opts...)
	}
	sc, err := r.serving(ctx, gvk, key.Namespace)
	if err != nil {
		return err
	}
	if sc == nil {
		return r.o.Direct.Get(ctx, key, obj)
	}
	if _, ok := obj.(runtime.Unstructured); ok {
		return sc.cache.Get(ctx, key, obj)
	}
	// One informer per scope, whatever the caller's type: it holds
	// unstructured objects, converted here.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := sc.cache.Get(ctx, key, u); err != nil {
		return err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("%s %s: %w", gvk, key, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}

// List implements client.Reader.
func (r *Reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	gvk, err := apiutil.GVKForObject(list, r.o.Scheme)
	if err != nil {
		return err
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if isSecret(gvk) || lo.FieldSelector != nil || lo.Limit > 0 || lo.Continue != "" || lo.Raw != nil {
		return r.o.Direct.List(ctx, list, opts...)
	}
	sc, err := r.serving(ctx, gvk, lo.Namespace)
	if err != nil {
		return err
	}
	if sc == nil {
		return r.o.Direct.List(ctx, list, opts...)
	}
	if _, ok := list.(runtime.Unstructured); ok {
		return sc.cache.List(ctx, list, opts...)
	}
	u := &unstructured.UnstructuredList{}
	u.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := sc.cache.List(ctx, u, opts...); err != nil {
		return err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), list); err != nil {
		return fmt.Errorf("%s list: %w", gvk, err)
	}
	return nil
}

func isSecret(gvk schema.GroupVersionKind) bool {
	return gvk.Group == "" && gvk.Kind == "Secret"
}

// scopeOf returns the scope of gvk in namespace, and whether it can be
// cached: a namespaced kind needs a namespace. A kind the API server does
// not serve is an error.
func (r *Reader) scopeOf(gvk schema.GroupVersionKind, namespace string) (Scope, bool, error) {
	m, err := r.o.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return Scope{}, false, err
	}
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		return Scope{GVK: gvk}, true, nil
	}
	return Scope{GVK: gvk, Namespace: namespace}, namespace != "", nil
}

// serving returns the synced scope of gvk in namespace, or nil when this
// read should go to the API server.
func (r *Reader) serving(ctx context.Context, gvk schema.GroupVersionKind, namespace string) (*scope, error) {
	key, cacheable, err := r.scopeOf(gvk, namespace)
	if err != nil || !cacheable {
		return nil, err
	}
	sc, err := r.use(key)
	if sc == nil || err != nil {
		return nil, err
	}
	if sc.informer.HasSynced() {
		return sc, nil
	}
	timeout := time.NewTimer(r.o.SyncTimeout)
	defer timeout.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !sc.informer.HasSynced() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sc.gone:
			return nil, nil
		case <-timeout.C:
			return nil, nil
		case <-poll.C:
		}
	}
	return sc, nil
}

// use returns the running scope key, starting it when needed, and marks it
// used now. It returns nil when the scope is refused or the reader is not
// running.
func (r *Reader) use(key Scope) (*scope, error) {
	now := r.o.Now()
	r.mu.Lock()
	if r.ctx == nil || r.ctx.Err() != nil {
		r.mu.Unlock()
		return nil, nil
	}
	if until, ok := r.denied[key]; ok && now.Before(until) {
		r.mu.Unlock()
		return nil, nil
	}
	if sc := r.scopes[key]; sc != nil {
		sc.lastUsed = now
		r.mu.Unlock()
		return sc, nil
	}
	var evict *scope
	if len(r.scopes) >= r.o.MaxInformers {
		for _, s := range r.scopes {
			if evict == nil || s.lastUsed.Before(evict.lastUsed) {
				evict = s
			}
		}
		delete(r.scopes, evict.key)
	}
	sc, err := r.start(r.ctx, key)
	if err == nil {
		sc.lastUsed = now
		r.scopes[key] = sc
	}
	r.mu.Unlock()
	if evict != nil {
		evict.stop()
	}
	return sc, err
}

// start runs an informer for key until ctx ends or the scope is dropped.
// The caller holds r.mu.
func (r *Reader) start(ctx context.Context, key Scope) (*scope, error) {
	sc := &scope{key: key, gone: make(chan struct{})}
	co := cache.Options{
		HTTPClient:       r.o.HTTPClient,
		Scheme:           r.o.Scheme,
		Mapper:           r.o.Mapper,
		DefaultTransform: cache.TransformStripManagedFields(),
		// Reads of other kinds through this cache are a bug, not a reason
		// to start an informer.
		ReaderFailOnMissingInformer: true,
		DefaultWatchErrorHandler: func(_ *toolscache.Reflector, err error) {
			// Forbidden: the controller may not list or watch the kind.
			// Not found: a LIST of a collection finds nothing only when
			// the API server does not serve the kind (its CRD is gone).
			// Either way the informer would retry forever, logging each
			// time; reads go to the API server instead, which answers
			// them as it should.
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				r.refuse(sc)
			}
		},
	}
	if key.Namespace != "" {
		co.DefaultNamespaces = map[string]cache.Config{key.Namespace: {}}
	}
	c, err := cache.New(r.o.Config, co)
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", key, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(key.GVK)
	inf, err := c.GetInformer(sctx, u, cache.BlockUntilSynced(false))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("caching %s: %w", key, err)
	}
	if r.o.OnEvent != nil {
		on := r.o.OnEvent
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { notify(on, o) },
			UpdateFunc: func(_, o any) { notify(on, o) },
			DeleteFunc: func(o any) { notify(on, o) },
		}); err != nil {
			cancel()
			return nil, fmt.Errorf("caching %s: %w", key, err)
		}
	}
	go func() { _ = c.Start(sctx) }()
	sc.cache, sc.informer, sc.cancel = c, inf, cancel
	return sc, nil
}

func notify(on func(client.Object), o any) {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	if obj, ok := o.(client.Object); ok {
		on(obj)
	}
}

// refuse stops a scope whose informer may not list or watch, or whose kind
// the API server does not serve: its reads go to the API server for
// ForbiddenRetry, and no informer of it runs meanwhile.
func (r *Reader) refuse(sc *scope) {
	r.mu.Lock()
	r.denied[sc.key] = r.o.Now().Add(r.o.ForbiddenRetry)
	r.mu.Unlock()
	r.drop(sc)
}

// drop stops sc and forgets it, unless another scope replaced it.
func (r *Reader) drop(sc *scope) {
	r.mu.Lock()
	if r.scopes[sc.key] == sc {
		delete(r.scopes, sc.key)
	}
	r.mu.Unlock()
	sc.stop()
}
