package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/appop"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/opcache"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// Options are what the controller is built from. The zero value of every
// field is what `stepflow controller` uses by default.
type Options struct {
	// SystemNamespace holds the definitions every namespace sees
	// (default definition.DefaultSystemNamespace).
	SystemNamespace string
	// MaxConcurrentReconciles bounds the runs reconciled at once (default 8).
	MaxConcurrentReconciles int
	// StepParallelism bounds the steps of one run evaluated at once in DAG
	// mode (default 8).
	StepParallelism int
	// Sandbox, when set, evaluates in a sandbox.Pool of worker processes
	// with these options (Ops is filled in), closed when the manager
	// stops: what the binary does. Nil evaluates in-process, where nothing
	// can stop a runaway template.
	Sandbox *sandbox.Options
	// Metrics is where the controller's metrics are registered (default
	// controller-runtime's registry, served on the manager's metrics
	// endpoint). Tests that build several controllers in one process give
	// each its own registry.
	Metrics prometheus.Registerer
	// OpsCache tunes the cache of what kube ops read (IdleTimeout,
	// MaxInformers, ForbiddenRetry, SyncTimeout; zero values are
	// opcache's defaults); Setup fills in the rest.
	OpsCache opcache.Options
	// SingleTenant makes every op act with the controller's own identity,
	// as a single-tenant install may. By default (false) each run's ops
	// act as its ServiceAccount (spec.serviceAccountName, its Workflow's,
	// else DefaultServiceAccount in the run's namespace): see pkg/tenancy.
	SingleTenant bool
	// DefaultServiceAccount is the ServiceAccount of a run that names none
	// (default tenancy.DefaultServiceAccount, "stepflow-runner").
	DefaultServiceAccount string
	// HTTP fences what HTTP ops may reach and says whether they use the
	// environment's proxies. The zero value denies link-local addresses
	// and the API server only: a cluster install sets HTTP.Fence.DenyLoopback.
	HTTP HTTPOptions
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logs, when set, also receives every #Log line of every step.
	Logs op.LogSink
	// Config is the configuration file's settings (queues, rate limits,
	// callbacks, cleanup); the zero value is the default.
	Config Config
}

// Controller is a controller set up in a manager: the manager runs it.
type Controller struct {
	Runs        *RunReconciler
	Definitions *DefinitionReconciler
	// Components compiles ComponentDefinitions, as Definitions does
	// WorkflowStepDefinitions.
	Components *DefinitionReconciler
	Metrics    *Metrics
	// Pool is the evaluator's worker pool when Options.Sandbox was set.
	Pool *sandbox.Pool
	// OpsReader is what kube ops read the local cluster through.
	OpsReader *opcache.Reader
	// Schedules creates the runs of WorkflowSchedules.
	Schedules *ScheduleReconciler
	// Cleanup deletes finished runs by TTL and history limits.
	Cleanup *CleanupReconciler
}

// NewManager returns a manager for the controller. It fills in what the
// controller depends on: the API scheme (when mo.Scheme is nil), and a
// cache that holds only the controller's own objects: WorkflowRuns,
// Workflows, WorkflowSchedules, WorkflowStepDefinitions,
// ComponentDefinitions and the journal ConfigMaps (selected by
// kubestore.RunLabel), all without managedFields. Secrets are never
// cached; nor is any kind read unstructured. What ops read goes through
// the ops' reader that Setup builds (pkg/opcache).
func NewManager(cfg *rest.Config, mo ctrl.Options) (ctrl.Manager, error) {
	if mo.Scheme == nil {
		s, err := api.NewScheme()
		if err != nil {
			return nil, err
		}
		mo.Scheme = s
	}
	if mo.Client.Cache == nil {
		mo.Client.Cache = &client.CacheOptions{}
	}
	mo.Client.Cache.Unstructured = false
	mo.Client.Cache.DisableFor = append(mo.Client.Cache.DisableFor, &corev1.Secret{})
	if mo.Cache.ByObject == nil {
		mo.Cache.ByObject = map[client.Object]cache.ByObject{}
	}
	journals, err := labels.NewRequirement(kubestore.RunLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	mo.Cache.ByObject[&corev1.ConfigMap{}] = cache.ByObject{Label: labels.NewSelector().Add(*journals)}
	if mo.Cache.DefaultTransform == nil {
		mo.Cache.DefaultTransform = cache.TransformStripManagedFields()
	}
	return ctrl.NewManager(cfg, mo)
}

// newOpsClient returns the client kube ops use on the local cluster: it
// reads through an opcache.Reader (added to mgr, which runs it) and writes
// straight to the API server, as the manager's client does.
func newOpsClient(mgr ctrl.Manager, o opcache.Options, waker *Waker) (client.Client, *opcache.Reader, error) {
	o.Config, o.HTTPClient = mgr.GetConfig(), mgr.GetHTTPClient()
	o.Scheme, o.Mapper, o.Direct = mgr.GetScheme(), mgr.GetRESTMapper(), mgr.GetAPIReader()
	o.OnEvent = waker.Notify
	o.InUse = func(s opcache.Scope) bool { return waker.Waits(s.GVK, s.Namespace) }
	reader, err := opcache.New(o)
	if err != nil {
		return nil, nil, err
	}
	if err := mgr.Add(reader); err != nil {
		return nil, nil, err
	}
	waker.WatchWith(reader)
	c, err := client.New(mgr.GetConfig(), client.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		Cache: &client.CacheOptions{Reader: reader, Unstructured: true},
	})
	if err != nil {
		return nil, nil, err
	}
	return c, reader, nil
}

// Setup builds the controller in mgr: the standard op set over the
// manager's cluster, the evaluator, the waker of waiting steps, the
// metrics, the WorkflowRun reconciler, one definition reconciler per
// definition.Kind (WorkflowStepDefinition, ComponentDefinition), and the
// health probes. The binary, the load harness and the envtest suite all
// build it here, so the tests test what ships.
func Setup(mgr ctrl.Manager, o Options) (*Controller, error) {
	if mgr == nil {
		return nil, errors.New("controller: no manager")
	}
	if o.SystemNamespace == "" {
		o.SystemNamespace = definition.DefaultSystemNamespace
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 8
	}
	if o.StepParallelism <= 0 {
		o.StepParallelism = 8
	}
	if o.Metrics == nil {
		o.Metrics = ctrlmetrics.Registry
	}
	if o.DefaultServiceAccount == "" {
		o.DefaultServiceAccount = tenancy.DefaultServiceAccount
	}
	waker := NewWaker()
	opsClient, opsReader, err := newOpsClient(mgr, o.OpsCache, waker)
	if err != nil {
		return nil, err
	}
	clusters, err := opsClusters(mgr, opsClient, o, waker)
	if err != nil {
		return nil, err
	}
	httpOpts, err := o.HTTP.ops(mgr.GetConfig(), mgr.GetAPIReader())
	if err != nil {
		return nil, err
	}
	// Components render through the evaluator made below, which needs
	// the ops first: the sandbox pool, so untrusted component templates
	// run in its workers.
	renderer := &component.Deferred{}
	components := component.New(component.Options{Evaluator: renderer,
		Types: func(ctx context.Context, ns string) component.Definitions {
			return definition.Cluster{Reader: mgr.GetClient(), Live: mgr.GetAPIReader(), SystemNamespace: o.SystemNamespace}.ForKind(ctx, ns, definition.ComponentKind)
		}})
	// App ops read the step's own run and its configuration (a
	// ConfigMap the cache does not hold) live; everything else as the
	// step's identity.
	// A relaunched run gets an instance id when the run it replays has
	// one, from the system namespace's counter, read and written live
	// (the cache holds only journal ConfigMaps) with the controller's
	// own rights.
	live, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient()})
	if err != nil {
		return nil, err
	}
	apps := appop.New(mgr.GetAPIReader(), clusters).WithInstanceIDs(func(ctx context.Context) (int64, error) {
		return app.AllocateInstanceID(ctx, live, o.SystemNamespace)
	})
	ops := opset.Standard(clusters, waker, httpOpts, components, apps)
	var (
		ev   Evaluator
		pool *sandbox.Pool
	)
	if o.Sandbox != nil {
		so := *o.Sandbox
		so.Ops = ops
		if pool, err = sandbox.New(so); err != nil {
			return nil, err
		}
		ev = pool
		// The workers end with the manager.
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return pool.Close()
		})); err != nil {
			pool.Close()
			return nil, err
		}
	} else if ev, err = eval.New(eval.Options{Ops: ops}); err != nil {
		return nil, err
	}
	renderer.Set(ev)
	metrics, err := NewMetrics(o.Metrics, mgr.GetCache())
	if err != nil {
		return nil, err
	}
	callbacks, err := newCallbacks(mgr, o, httpOpts)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		Runs: &RunReconciler{
			Client: mgr.GetClient(), Live: mgr.GetAPIReader(),
			Evaluator: ev, Ops: metrics.instrument(op.Direct),
			Definitions: definition.Cluster{Reader: mgr.GetClient(), Live: mgr.GetAPIReader(), SystemNamespace: o.SystemNamespace},
			Recorder:    mgr.GetEventRecorderFor("stepflow"),
			Logs:        o.Logs, Waker: waker, Metrics: metrics, Callbacks: callbacks,
			Now: o.Now, Parallelism: o.StepParallelism,
			DefaultServiceAccount: o.DefaultServiceAccount,
		},
		Definitions: &DefinitionReconciler{Client: mgr.GetClient(), Evaluator: ev, Kind: definition.StepKind},
		Components:  &DefinitionReconciler{Client: mgr.GetClient(), Evaluator: ev, Kind: definition.ComponentKind},
		Metrics:     metrics,
		Pool:        pool,
		OpsReader:   opsReader,
	}
	if err := o.Config.Queues.Validate(); err != nil {
		return nil, fmt.Errorf("controller configuration: %w", err)
	}
	if o.Config.Queues.Enabled() {
		c.Runs.queue = newAdmission(o.Config.Queues, metrics, o.Now)
	}
	if c.Runs.Limiter, err = o.Config.RateLimits.stepLimiter(mgr, o.Now); err != nil {
		return nil, err
	}
	if err := c.Runs.setup(mgr, o.MaxConcurrentReconciles); err != nil {
		return nil, err
	}
	callbacks.markOwn = c.Runs.own.set // its status patches need no tick
	if err := c.Definitions.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := c.Components.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := c.setupSchedulesAndCleanup(mgr, o); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return c, nil
}
