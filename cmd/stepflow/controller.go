package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/opcache"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// controllerOptions are the flags of `stepflow controller`.
type controllerOptions struct {
	kubeconfig      string
	systemNamespace string
	concurrency     int
	parallelism     int
	qps             float32
	burst           int
	leaderElect     bool
	leaderNamespace string
	metricsAddr     string
	metricsSecure   bool
	metricsCertDir  string
	probeAddr       string
	// The cache of what kube ops read (pkg/opcache).
	opsCacheIdle         time.Duration
	opsCacheMaxInformers int
	development          bool
	// Evaluator worker processes (pkg/sandbox).
	evalWorkers   int
	evalMemoryMiB int64
	evalTimeout   time.Duration
	// What HTTP ops may reach (pkg/netfence).
	httpAllowCIDRs, httpDenyCIDRs []string
	httpAllowHosts, httpDenyHosts []string
	httpProxyFromEnv              bool
	inClusterDefaults             bool
	// Whose rights ops act with (pkg/tenancy).
	singleTenant          bool
	defaultServiceAccount string
	// apiServiceHost is the kubernetes.default service IP when the
	// controller runs in a pod ($KUBERNETES_SERVICE_HOST).
	apiServiceHost string
	// configFile is the controller's configuration file (controller.Config).
	configFile string
}

func newControllerCmd() *cobra.Command {
	return controllerCmd(&controllerOptions{apiServiceHost: os.Getenv("KUBERNETES_SERVICE_HOST")})
}

// controllerCmd is `stepflow controller` with its flags bound to o.
func controllerCmd(o *controllerOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the WorkflowRun controller",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runController(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "the controller's configuration file, YAML (queues, rateLimits, callback, cleanup: see docs/controller.md)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.systemNamespace, "system-namespace", definition.DefaultSystemNamespace, "namespace of definitions shared by every namespace")
	f.IntVar(&o.concurrency, "max-concurrent-reconciles", 8, "runs reconciled at once")
	f.IntVar(&o.parallelism, "step-parallelism", 8, "steps of one run evaluated at once in DAG mode")
	f.Float32Var(&o.qps, "kube-api-qps", 50, "client QPS towards the API server, per resource kind (controller-runtime keeps one limiter per kind)")
	f.IntVar(&o.burst, "kube-api-burst", 100, "client burst towards the API server, per resource kind")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader, for more than one replica")
	f.StringVar(&o.leaderNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the controller's)")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "address of the Prometheus metrics endpoint; 0 disables it. Bind another interface only with --metrics-secure")
	f.BoolVar(&o.metricsSecure, "metrics-secure", false, "serve metrics over HTTPS to callers whose bearer token the API server authenticates and authorizes for GET /metrics (the controller needs create on tokenreviews and subjectaccessreviews)")
	f.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "directory of tls.crt and tls.key for --metrics-secure (default: a self-signed certificate)")
	f.StringVar(&o.probeAddr, "health-probe-bind-address", "127.0.0.1:8081", "address of the health probes (/healthz, /readyz), unauthenticated; 0 disables them. In a pod, bind the pod IP so only the kubelet's network reaches them")
	f.DurationVar(&o.opsCacheIdle, "ops-cache-idle-timeout", opcache.DefaultIdleTimeout, "stop the informer of a kind in a namespace that no step read or waited on for this long")
	f.IntVar(&o.opsCacheMaxInformers, "ops-cache-max-informers", opcache.DefaultMaxInformers, "informers of kinds steps read, at most (one per kind and namespace); the least recently used stops first")
	f.BoolVar(&o.development, "log-development", false, "human-readable logs instead of JSON")
	f.IntVar(&o.evalWorkers, "eval-workers", 0, "most evaluator worker processes at once: one runs, others start only while every running one is held by a long evaluation (0: GOMAXPROCS; -1: evaluate in the controller's own process, with no bound that can stop a runaway template)")
	f.Int64Var(&o.evalMemoryMiB, "eval-memory-limit", sandbox.DefaultMemoryLimit>>20, "MiB an evaluator worker's address space may grow by before it dies and the step evaluating fails with EvalMemory")
	f.DurationVar(&o.evalTimeout, "eval-timeout", 10*time.Second, "CUE time one evaluation may take before its worker is killed and the step fails with EvalTimeout")
	f.StringSliceVar(&o.httpAllowCIDRs, "http-allow-cidr", nil, "CIDRs or addresses HTTP ops may reach even where a built-in rule denies them (loopback, link-local); never the API server (repeat or comma-separate)")
	f.StringSliceVar(&o.httpDenyCIDRs, "http-deny-cidr", nil, "CIDRs or addresses HTTP ops may not reach; wins over every allow")
	f.StringSliceVar(&o.httpAllowHosts, "http-allow-host", nil, "host name globs (*.corp.example) HTTP ops may reach even where a built-in rule denies their address")
	f.StringSliceVar(&o.httpDenyHosts, "http-deny-host", nil, "host name globs HTTP ops may not reach; wins over every allow")
	f.BoolVar(&o.httpProxyFromEnv, "http-proxy-from-environment", false, "send HTTP ops through the proxies of HTTP_PROXY, HTTPS_PROXY and NO_PROXY (default: no proxy)")
	f.BoolVar(&o.singleTenant, "single-tenant", false, "ops act with the controller's own rights, for every run; by default each run's ops act as its ServiceAccount (spec.serviceAccountName, its Workflow's, else --default-service-account in the run's namespace)")
	f.StringVar(&o.defaultServiceAccount, "default-service-account", tenancy.DefaultServiceAccount, "ServiceAccount, in the run's namespace, of a run and Workflow that name none")
	f.BoolVar(&o.inClusterDefaults, "in-cluster-defaults", o.apiServiceHost != "", "deny HTTP ops loopback addresses and the API server's endpoints (EndpointSlice default/kubernetes, read at start), as a cluster install must (default: true when $KUBERNETES_SERVICE_HOST is set)")
	return cmd
}

// httpOptions are the HTTP ops' fence and proxy settings of o. Besides
// the flags' rules, the fence always denies link-local addresses and the
// API server: the host the controller connects to (added by
// controller.Setup), in a pod the kubernetes.default service IP, and with
// the in-cluster defaults the addresses behind that service.
func (o *controllerOptions) httpOptions() controller.HTTPOptions {
	fc := netfence.Config{
		AllowCIDRs: o.httpAllowCIDRs, DenyCIDRs: o.httpDenyCIDRs,
		AllowHosts: o.httpAllowHosts, DenyHosts: o.httpDenyHosts,
		DenyLoopback: o.inClusterDefaults,
	}
	if o.apiServiceHost != "" {
		fc.APIServers = append(fc.APIServers, o.apiServiceHost)
	}
	return controller.HTTPOptions{Fence: fc, DenyAPIEndpoints: o.inClusterDefaults, ProxyFromEnvironment: o.httpProxyFromEnv}
}

func runController(ctx context.Context, o *controllerOptions) error {
	ctrl.SetLogger(zap.New(zap.UseDevMode(o.development)))
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if cfg, err = ctrl.GetConfig(); err != nil {
			return fmt.Errorf("no cluster to run against: %w", err)
		}
	}
	return startController(ctx, o, cfg)
}

// startController runs the controller against cfg until ctx ends.
func startController(ctx context.Context, o *controllerOptions, cfg *rest.Config) error {
	var conf controller.Config
	if o.configFile != "" {
		var err error
		if conf, err = controller.LoadConfig(o.configFile); err != nil {
			return err
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.qps, o.burst
	mgr, err := controller.NewManager(cfg, ctrl.Options{
		Metrics:                 controller.MetricsServer(controller.Endpoint{Addr: o.metricsAddr, Secure: o.metricsSecure, CertDir: o.metricsCertDir}),
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "stepflow-controller",
		LeaderElectionNamespace: o.leaderNamespace,
	})
	if err != nil {
		return err
	}
	copts := controller.Options{
		Config:                  conf,
		SystemNamespace:         o.systemNamespace,
		MaxConcurrentReconciles: o.concurrency,
		StepParallelism:         o.parallelism,
		HTTP:                    o.httpOptions(),
		OpsCache:                opcache.Options{IdleTimeout: o.opsCacheIdle, MaxInformers: o.opsCacheMaxInformers},
		SingleTenant:            o.singleTenant,
		DefaultServiceAccount:   o.defaultServiceAccount,
	}
	if o.evalWorkers >= 0 {
		copts.Sandbox = &sandbox.Options{Workers: o.evalWorkers,
			MemoryLimit: o.evalMemoryMiB << 20, EvalTimeout: o.evalTimeout}
	}
	if _, err := controller.Setup(mgr, copts); err != nil {
		return err
	}
	return mgr.Start(ctx)
}
