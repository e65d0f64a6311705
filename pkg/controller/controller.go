package controller

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
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
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logs, when set, also receives every #Log line of every step.
	Logs op.LogSink
}

// Controller is a controller set up in a manager: the manager runs it.
type Controller struct {
	Runs        *RunReconciler
	Definitions *DefinitionReconciler
	Metrics     *Metrics
	// Pool is the evaluator's worker pool when Options.Sandbox was set.
	Pool *sandbox.Pool
}

// NewManager returns a manager for the controller. It fills in what the
// controller depends on: the API scheme (when mo.Scheme is nil), and a
// client that reads objects of any kind through the cache, so ops' reads
// cost no request and their informers can wake waiting steps.
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
	mo.Client.Cache.Unstructured = true
	return ctrl.NewManager(cfg, mo)
}

// Setup builds the controller in mgr: the standard op set over the
// manager's cluster, the evaluator, the waker of waiting steps, the
// metrics, the WorkflowRun and WorkflowStepDefinition reconcilers, and the
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
	waker := NewWaker()
	ops := opset.Standard(kube.Local(mgr.GetClient()), waker)
	var (
		ev   Evaluator
		pool *sandbox.Pool
		err  error
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
	metrics, err := NewMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		Runs: &RunReconciler{
			Client: mgr.GetClient(), Live: mgr.GetAPIReader(),
			Evaluator: ev, Ops: op.Direct,
			Definitions: definition.Cluster{Reader: mgr.GetClient(), SystemNamespace: o.SystemNamespace},
			Recorder:    mgr.GetEventRecorderFor("stepflow"),
			Logs:        o.Logs, Waker: waker, Metrics: metrics,
			Now: o.Now, Parallelism: o.StepParallelism,
		},
		Definitions: &DefinitionReconciler{Client: mgr.GetClient(), Evaluator: ev},
		Metrics:     metrics,
		Pool:        pool,
	}
	if err := c.Runs.setup(mgr, o.MaxConcurrentReconciles); err != nil {
		return nil, err
	}
	if err := c.Definitions.SetupWithManager(mgr); err != nil {
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
