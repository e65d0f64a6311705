package controller

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/callback"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// CallbackConfig is the callback section of Config: a controller-wide
// callback, used for every run that has none of its own (nor its
// Workflow), and how deliveries are made for every callback.
type CallbackConfig struct {
	// URL receives the transitions of every run without a callback of
	// its own. Empty: no controller-wide callback.
	URL string `json:"url,omitempty"`
	// HeadersFromSecret names a Secret in the controller's namespace
	// (SystemNamespace) whose keys and values are sent as headers, read
	// with the controller's own identity.
	HeadersFromSecret string `json:"headersFromSecret,omitempty"`
	// Events are the transitions the controller-wide callback hears;
	// without them, all.
	Events []v1alpha1.CallbackEvent `json:"events,omitempty"`
	// Timeout bounds one POST (default 10s).
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// MinBackoff and MaxBackoff bound the wait before a failed delivery
	// is tried again, doubling from the one to the other (defaults 1s,
	// 5m).
	MinBackoff metav1.Duration `json:"minBackoff,omitempty"`
	MaxBackoff metav1.Duration `json:"maxBackoff,omitempty"`
	// Workers deliver for that many runs at once (default 4).
	Workers int `json:"workers,omitempty"`
	// MaxPending bounds each run's outbox (default 64); past it the
	// oldest transitions are dropped and counted in status.callback.dropped.
	MaxPending int `json:"maxPending,omitempty"`
}

// validate reports a setting that cannot work: a URL that is not http(s),
// an event no run has, a negative bound.
func (c CallbackConfig) validate() error {
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("callback.url %q: not an http(s) URL", c.URL)
		}
	} else if c.HeadersFromSecret != "" || len(c.Events) > 0 {
		return errors.New("callback: headersFromSecret and events need a url")
	}
	for _, e := range c.Events {
		if !slices.Contains(callback.Events, e) {
			return fmt.Errorf("callback.events: %q is not an event (%v)", e, callback.Events)
		}
	}
	if c.Timeout.Duration < 0 || c.MinBackoff.Duration < 0 || c.MaxBackoff.Duration < 0 || c.Workers < 0 || c.MaxPending < 0 {
		return errors.New("callback: timeout, minBackoff, maxBackoff, workers and maxPending cannot be negative")
	}
	return nil
}

func (c CallbackConfig) withDefaults() CallbackConfig {
	if c.Timeout.Duration <= 0 {
		c.Timeout.Duration = 10 * time.Second
	}
	if c.MinBackoff.Duration <= 0 {
		c.MinBackoff.Duration = time.Second
	}
	if c.MaxBackoff.Duration < c.MinBackoff.Duration {
		c.MaxBackoff.Duration = max(5*time.Minute, c.MinBackoff.Duration)
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.MaxPending <= 0 {
		c.MaxPending = callback.DefaultMaxPending
	}
	return c
}

// Callbacks records the transitions of runs that have a callback in
// their status (record, called by the run reconciler before its status
// write) and delivers them asynchronously (a manager Runnable with its own
// workers and queue), so a slow or failing receiver never holds a tick.
// See pkg/callback and docs/controller.md.
type Callbacks struct {
	client client.Client // cached reads, status patches
	live   client.Reader // the controller-wide callback's Secret
	// secretsAs reads the Secret of a run's callback as the run's
	// ServiceAccount.
	secretsAs  func(namespace, serviceAccount string) (client.Reader, error)
	def        *v1alpha1.Callback
	system     string
	defaultSA  string
	cfg        CallbackConfig
	sender     *callback.Sender
	queue      workqueue.TypedRateLimitingInterface[types.NamespacedName]
	now        func() time.Time
	markOwn    func(types.NamespacedName, types.UID, string)
	getInforms func(ctx context.Context) (toolscache.SharedIndexInformer, error)

	mu sync.Mutex
	// sent holds, per run, the keys delivered whose removal from the
	// outbox the cache may not show yet, so they are not sent twice.
	sent map[types.UID]map[string]bool
}

// newCallbacks builds the Callbacks of a controller set up in mgr; HTTP
// goes through the fence of the HTTP ops (hop).
func newCallbacks(mgr ctrl.Manager, o Options, hop httpop.Options) (*Callbacks, error) {
	cfg := CallbackConfig{}
	if o.Config.Callback != nil {
		cfg = *o.Config.Callback
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("controller configuration: %w", err)
	}
	cfg = cfg.withDefaults()
	c := &Callbacks{
		client: mgr.GetClient(), live: mgr.GetAPIReader(), system: o.SystemNamespace,
		defaultSA: o.DefaultServiceAccount, cfg: cfg, now: o.Now,
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](
			cfg.MinBackoff.Duration, cfg.MaxBackoff.Duration)),
		sent: map[types.UID]map[string]bool{},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.URL != "" {
		c.def = &v1alpha1.Callback{URL: cfg.URL, HeadersFromSecret: cfg.HeadersFromSecret, Events: cfg.Events}
	}
	base, _ := nethttp.DefaultTransport.(*nethttp.Transport)
	if base == nil {
		base = &nethttp.Transport{}
	}
	c.sender = &callback.Sender{Fence: hop.Fence, Timeout: cfg.Timeout.Duration, Client: &nethttp.Client{
		Transport:     httpop.FencedTransport(base, hop.Fence, hop.ProxyFromEnvironment),
		CheckRedirect: callback.CheckRedirect(hop.Fence),
	}}
	if o.SingleTenant {
		c.secretsAs = func(string, string) (client.Reader, error) { return mgr.GetAPIReader(), nil }
	} else {
		uncached, err := client.New(mgr.GetConfig(), client.Options{
			HTTPClient: mgr.GetHTTPClient(), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		})
		if err != nil {
			return nil, err
		}
		ids, err := tenancy.New(tenancy.Options{Config: mgr.GetConfig(), HTTPClient: mgr.GetHTTPClient(),
			Reader: mgr.GetClient(), Client: uncached, DefaultServiceAccount: o.DefaultServiceAccount})
		if err != nil {
			return nil, err
		}
		c.secretsAs = func(ns, sa string) (client.Reader, error) {
			return ids.For(tenancy.Identity{Namespace: ns, Name: sa})
		}
	}
	c.getInforms = func(ctx context.Context) (toolscache.SharedIndexInformer, error) {
		inf, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.WorkflowRun{})
		if err != nil {
			return nil, err
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			return nil, fmt.Errorf("controller: the WorkflowRun informer is a %T, not a SharedIndexInformer", inf)
		}
		return sii, nil
	}
	return c, mgr.Add(c)
}

// record adds the transitions from run's status to after, which the
// caller writes if it differs from run's, to after's outbox, when the run
// has a callback: its own, its Workflow's, or the controller's. Called on
// every tick, so a suspend or resume written from outside, which a tick
// of the suspended run may not change anything after, is heard. A run
// without a callback costs a nil check (and, for a workflowRef, a cached
// read of the Workflow).
func (c *Callbacks) record(ctx context.Context, run *v1alpha1.WorkflowRun, after *v1alpha1.WorkflowRunStatus, now time.Time) {
	if c == nil {
		return
	}
	cb, _, _ := c.target(ctx, run)
	if cb == nil {
		return
	}
	ts := callback.Transitions(run.UID, &run.Status, after, now)
	if len(ts) > 0 {
		callback.Record(after, ts, cb.Events, c.cfg.MaxPending)
	}
	callback.NoteSuspend(after)
}

// target is the callback of run (its own, else its Workflow's, else the
// controller's: nil when none) and the ServiceAccount its Secret is read
// as ("" for the controller's, read as the controller).
func (c *Callbacks) target(ctx context.Context, run *v1alpha1.WorkflowRun) (*v1alpha1.Callback, string, error) {
	own := run.Spec.ServiceAccountName
	if run.Spec.Callback != nil {
		if own == "" && run.Spec.WorkflowSpec == nil && run.Spec.WorkflowRef != "" {
			var wf v1alpha1.Workflow
			if err := c.client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}, &wf); err == nil {
				own = wf.ServiceAccountName
			}
		}
		return run.Spec.Callback, tenancy.Resolve(own, "", c.defaultSA), nil
	}
	if run.Spec.WorkflowSpec == nil && run.Spec.WorkflowRef != "" {
		var wf v1alpha1.Workflow
		err := c.client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.WorkflowRef}, &wf)
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, "", err
		}
		if err == nil && wf.Callback != nil {
			return wf.Callback, tenancy.Resolve(own, wf.ServiceAccountName, c.defaultSA), nil
		}
	}
	return c.def, "", nil
}

// Start delivers until ctx ends: the WorkflowRun informer's events enqueue
// the runs whose outbox got a transition (every such run when the
// controller starts, from the informer's initial list), and the workers
// deliver them.
func (c *Callbacks) Start(ctx context.Context) error {
	inf, err := c.getInforms(ctx)
	if err != nil {
		return fmt.Errorf("callbacks: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if run, ok := obj.(*v1alpha1.WorkflowRun); ok && lastPending(run) != "" {
				c.queue.Add(client.ObjectKeyFromObject(run))
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			run, ok := newObj.(*v1alpha1.WorkflowRun)
			old, ok2 := oldObj.(*v1alpha1.WorkflowRun)
			if ok && run.Status.Callback != nil && len(run.Status.Callback.Outbox) == 0 {
				// The cache holds the emptied outbox: no read can show
				// the keys sent any more.
				c.forgetSent(run.UID)
			}
			// Only a new transition: the delivery's own status patch
			// (fewer pending, lastError) must not skip the backoff.
			if ok && ok2 && lastPending(run) != "" && lastPending(run) != lastPending(old) {
				c.queue.Add(client.ObjectKeyFromObject(run))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if run, ok := obj.(*v1alpha1.WorkflowRun); ok {
				c.forgetSent(run.UID)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("callbacks: watching runs: %w", err)
	}
	defer func() { _ = inf.RemoveEventHandler(reg) }()
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// lastPending is the key of the newest transition in run's outbox.
func lastPending(run *v1alpha1.WorkflowRun) string {
	if cb := run.Status.Callback; cb != nil && len(cb.Outbox) > 0 {
		return cb.Outbox[len(cb.Outbox)-1].Key
	}
	return ""
}

// deliveryOutcome says when a run is looked at again.
type deliveryOutcome int

const (
	deliveryDone    deliveryOutcome = iota
	deliveryBackoff                 // a delivery failed: after the backoff
	deliverySoon                    // a status write lost a race: shortly
)

func (c *Callbacks) next(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	switch c.deliver(ctx, name) {
	case deliveryBackoff:
		c.queue.AddRateLimited(name)
	case deliverySoon:
		c.queue.AddAfter(name, staleRetry)
	default:
		c.queue.Forget(name)
	}
	return true
}

// deliver sends the run's pending transitions, oldest first, stopping at
// the first that fails, and writes what it did to status.callback.
func (c *Callbacks) deliver(ctx context.Context, name types.NamespacedName) deliveryOutcome {
	logger := ctrl.LoggerFrom(ctx).WithValues("workflowrun", name)
	var run v1alpha1.WorkflowRun
	if err := c.client.Get(ctx, name, &run); err != nil {
		if apierrors.IsNotFound(err) {
			return deliveryDone
		}
		return deliveryBackoff
	}
	outbox := []v1alpha1.CallbackTransition(nil)
	if run.Status.Callback != nil {
		outbox = run.Status.Callback.Outbox
	}
	sent := c.sentFor(run.UID, outbox)
	if len(outbox) == 0 {
		return deliveryDone
	}
	var (
		keep              []v1alpha1.CallbackTransition
		delivered         string
		failed, permanent error
		dropped           int32
	)
	cb, sa, err := c.target(ctx, &run)
	var header nethttp.Header
	if err == nil && cb != nil {
		header, err = c.headers(ctx, &run, cb, sa)
	}
	if err != nil {
		failed = fmt.Errorf("callback of %s: %w", name, err)
		keep = outbox
		outbox = nil
	}
	for _, t := range outbox {
		if failed != nil {
			keep = append(keep, t)
			continue
		}
		if c.isSent(sent, t.Key) {
			delivered = t.Key
			continue
		}
		if cb == nil || !callback.Wants(cb.Events, t.Event) {
			continue // no longer asked for
		}
		switch serr := c.sender.Send(ctx, cb.URL, header, t.Key, callback.NewBody(&run, t)); {
		case serr == nil:
			c.markSent(sent, t.Key)
			delivered = t.Key
		case callback.IsPermanent(serr):
			c.markSent(sent, t.Key) // removed from the outbox: not sent again
			permanent, dropped = serr, dropped+1
		default:
			failed = serr
			keep = append(keep, t)
		}
	}
	before := run.DeepCopy()
	st := run.Status.Callback.DeepCopy()
	st.Outbox, st.Pending, st.Dropped = keep, int32(len(keep)), st.Dropped+dropped
	now := metav1.NewTime(c.now())
	if delivered != "" {
		st.Delivered, st.DeliveredTime = delivered, &now
		st.LastError, st.LastErrorTime = "", nil
	}
	if e := errors.Join(permanent, failed); e != nil {
		st.LastError, st.LastErrorTime = e.Error(), &now
		logger.V(1).Info("callback delivery failed", "error", e.Error())
	}
	run.Status.Callback = st
	if err := c.client.Status().Patch(ctx, &run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return deliveryDone
		case apierrors.IsConflict(err):
			return deliverySoon
		}
		logger.Error(err, "writing callback delivery state")
		return deliveryBackoff
	}
	if c.markOwn != nil && !run.Status.Finished {
		// A finished run is not ticked anyway, and the reconciler keeps
		// no entry for it that this would have to be dropped from.
		c.markOwn(name, run.UID, run.ResourceVersion)
	}
	if failed != nil {
		return deliveryBackoff
	}
	return deliveryDone
}

// headers are the headers of cb's Secret: read as the run's
// ServiceAccount sa, or as the controller from its namespace for the
// controller-wide callback (sa "").
func (c *Callbacks) headers(ctx context.Context, run *v1alpha1.WorkflowRun, cb *v1alpha1.Callback, sa string) (nethttp.Header, error) {
	if cb.HeadersFromSecret == "" {
		return nil, nil
	}
	key := types.NamespacedName{Namespace: run.Namespace, Name: cb.HeadersFromSecret}
	reader := c.live
	if sa == "" {
		key.Namespace = c.system
	} else {
		r, err := c.secretsAs(run.Namespace, sa)
		if err != nil {
			return nil, err
		}
		reader = r
	}
	var s corev1.Secret
	if err := reader.Get(ctx, key, &s); err != nil {
		who := "the controller"
		if sa != "" {
			who = "serviceaccount " + run.Namespace + "/" + sa
		}
		return nil, fmt.Errorf("headersFromSecret: reading Secret %s as %s: %w", key, who, err)
	}
	h := nethttp.Header{}
	for k, v := range s.Data {
		h.Set(k, string(v))
	}
	for k, v := range s.StringData {
		h.Set(k, v)
	}
	return h, nil
}

// sentFor returns the keys of uid delivered but maybe still in the
// cached outbox, keeping only those still in outbox (the others' removal
// has reached the cache).
func (c *Callbacks) sentFor(uid types.UID, outbox []v1alpha1.CallbackTransition) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent[uid]
	if len(outbox) == 0 {
		delete(c.sent, uid)
		return nil
	}
	if s == nil {
		s = map[string]bool{}
		c.sent[uid] = s
	}
	inBox := make(map[string]bool, len(outbox))
	for _, t := range outbox {
		inBox[t.Key] = true
	}
	for k := range s {
		if !inBox[k] {
			delete(s, k)
		}
	}
	return s
}

func (c *Callbacks) forgetSent(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sent, uid)
}

// heldSent counts the runs whose sent keys are kept.
func (c *Callbacks) heldSent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

func (c *Callbacks) isSent(s map[string]bool, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s[key]
}

func (c *Callbacks) markSent(s map[string]bool, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s[key] = true
}
