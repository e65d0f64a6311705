package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stepflow-dev/stepflow/pkg/apiserver"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/web"
)

// serverOptions are the flags of `stepflow server`.
type serverOptions struct {
	listen           string
	auth             string
	tlsCert, tlsKey  string
	kubeconfig       string
	namespace        string
	systemNamespace  string
	rateLimit        float64
	burst            int
	reviewTTL        time.Duration
	shutdownDeadline time.Duration
	// kubeQPS and kubeBurst bound the server's requests to the API
	// server; 0: client-go's defaults (5 and 10).
	kubeQPS   float32
	kubeBurst int
}

func newServerCmd() *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve SREWorks' /workflow REST API over WorkflowRuns",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServer(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&o.auth, "auth", "kubernetes", "kubernetes: bearer tokens checked with TokenReview, calls with SubjectAccessReview; none: every caller may do everything, only on a loopback --listen")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (with --tls-key); without both, plain HTTP")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS key file")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.namespace, "namespace", "default", "namespace of launches and lists that name none")
	f.StringVar(&o.systemNamespace, "system-namespace", definition.DefaultSystemNamespace, "namespace of the step definitions shared by every namespace and of the instance id counter")
	f.Float64Var(&o.rateLimit, "rate-limit", 20, "requests per second per user (0: no limit)")
	f.IntVar(&o.burst, "rate-burst", 40, "requests a user may send at once")
	f.DurationVar(&o.reviewTTL, "review-cache-ttl", 5*time.Second, "how long token and access reviews are trusted")
	f.DurationVar(&o.shutdownDeadline, "shutdown-timeout", 10*time.Second, "how long requests in flight may finish on SIGTERM")
	f.Float32Var(&o.kubeQPS, "kube-api-qps", defaultServerKubeQPS, "client QPS towards the API server, per resource kind")
	f.IntVar(&o.kubeBurst, "kube-api-burst", defaultServerKubeBurst, "client burst towards the API server, per resource kind")
	return cmd
}

// check refuses options that cannot be served safely.
func (o *serverOptions) check() error {
	switch o.auth {
	case "kubernetes":
	case "none":
		if !loopback(o.listen) {
			return fmt.Errorf("--auth none lets anyone who reaches %q launch runs with the server's rights: listen on a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT) or use --auth kubernetes", o.listen)
		}
	default:
		return fmt.Errorf("--auth %q: want kubernetes or none", o.auth)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// loopback reports whether addr (HOST:PORT) binds loopback only; an empty
// host binds every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// The server's default client limits towards the API server: the
// controller's. client-go's own (5 a second) would make each launch, a
// handful of requests, wait on the others.
const (
	defaultServerKubeQPS   = 50
	defaultServerKubeBurst = 100
)

// restConfig is the cluster the server serves: --kubeconfig, else
// in-cluster or $KUBECONFIG, with the client limits of the options.
func (o *serverOptions) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if cfg, err = ctrl.GetConfig(); err != nil {
			return nil, fmt.Errorf("no cluster to serve: %w", err)
		}
	}
	if o.kubeQPS > 0 {
		cfg.QPS = o.kubeQPS
	}
	if o.kubeBurst > 0 {
		cfg.Burst = o.kubeBurst
	}
	return cfg, nil
}

func runServer(ctx context.Context, o *serverOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.listen, err)
	}
	return serveAPI(ctx, o, ln)
}

// serveAPI serves the API on ln until ctx ends, then lets requests in
// flight finish.
func serveAPI(ctx context.Context, o *serverOptions, ln net.Listener) error {
	defer ln.Close() // Serve closes it too; this covers the early returns
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	conn, err := apiserver.NewCluster(cfg)
	if err != nil {
		return err
	}
	watch, err := apiserver.NewWatch(cfg)
	if err != nil {
		return err
	}
	runs, err := apiserver.NewRunInformer(ctx, conn)
	if err != nil {
		return err
	}
	var auth apiserver.Authenticator = apiserver.Anonymous{Name: "local"}
	if o.auth == "kubernetes" {
		auth = apiserver.NewKubernetes(conn.GetClient(), o.reviewTTL, time.Now)
	}
	synced := make(chan struct{})
	handler := apiserver.New(apiserver.Options{
		Client: conn.GetClient(), Live: conn.GetAPIReader(), Auth: auth,
		Namespace: o.namespace, SystemNamespace: o.systemNamespace,
		Events:    conn.GetEventRecorderFor("stepflow-server"),
		RateLimit: o.rateLimit, Burst: o.burst,
		Watch: watch,
		Runs:  runs, UI: web.Dist(),
		Ready: func(context.Context) error {
			select {
			case <-synced:
				return nil
			default:
				return errors.New("the cache of workflowruns has not synced yet")
			}
		},
	})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	connErr := make(chan error, 1)
	go func() { connErr <- conn.Start(ctx) }()
	go func() {
		if conn.GetCache().WaitForCacheSync(ctx) {
			close(synced)
		}
	}()

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			served <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(os.Stderr, "stepflow server: serving %s://%s (auth %s)\n", scheme, ln.Addr(), o.auth)

	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case err := <-connErr:
		if err == nil {
			err = errors.New("stopped")
		}
		_ = srv.Close() // the cluster error is the one to report
		return fmt.Errorf("cluster connection: %w", err)
	case <-ctx.Done():
	}
	shutdown, done := context.WithTimeout(context.Background(), o.shutdownDeadline)
	defer done()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
