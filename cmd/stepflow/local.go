package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/kubelet"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// localOptions are the flags of `stepflow local`.
type localOptions struct {
	assets      string
	crds        string
	definitions string
	example     string
	stateDir    string
	noExample   bool
	apiListen   string
}

func newLocalCmd() *cobra.Command {
	o := &localOptions{}
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Start a local control plane with the controller, the shipped definitions and an example run",
		Long: `Starts etcd and kube-apiserver on this machine (binaries from
--assets, which 'make run' builds), installs the CRDs and the shipped
definitions, runs the controller and the REST API server (stepflow server,
--auth none on a loopback address), applies an example WorkflowRun and
prints its progress live. It writes a kubeconfig for kubectl and stepflow,
prints curl examples of the API once it is ready, and keeps running until
Ctrl-C, then shuts everything down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runLocal(ctx, cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with kube-apiserver, etcd and kubectl (default $KUBEBUILDER_ASSETS)")
	f.StringVar(&o.crds, "crds", "charts/stepflow/crds", "directory of the CRDs to install")
	f.StringVar(&o.definitions, "definitions", "definitions", "directory of the step definitions (.cue) to install")
	f.StringVar(&o.example, "example", "examples/demo.yaml", `the example WorkflowRun to apply, or "gray-release": launch and promote, then launch and roll back, the application of examples/gray-release.yaml`)
	f.StringVar(&o.stateDir, "state-dir", ".stepflow", "where to write the kubeconfig")
	f.BoolVar(&o.noExample, "no-example", false, "do not apply the example run")
	f.StringVar(&o.apiListen, "api-listen", defaultLocalAPIListen, "loopback address of the REST API server (--auth none: every caller may do everything); when the default's port is taken, any free port of 127.0.0.1")
	return cmd
}

func runLocal(ctx context.Context, out io.Writer, o *localOptions) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	// Only the controller's errors: the demo prints the progress itself.
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	if o.assets == "" {
		return fmt.Errorf("no control-plane binaries: pass --assets or set KUBEBUILDER_ASSETS (make run does this)")
	}
	say("▶ starting etcd and kube-apiserver from %s", o.assets)
	env := &envtest.Environment{BinaryAssetsDirectory: o.assets, CRDDirectoryPaths: []string{o.crds}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting the local control plane: %w", err)
	}
	defer func() {
		say("▶ stopping the control plane")
		_ = env.Stop()
	}()
	say("▶ installed the CRDs from %s", o.crds)

	kubeconfig, err := writeKubeconfig(env, o.stateDir)
	if err != nil {
		return err
	}
	scheme, err := api.NewScheme()
	if err != nil {
		return err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	n, err := definition.InstallDir(ctx, c, o.definitions, definition.DefaultSystemNamespace)
	if err != nil {
		return err
	}
	say("▶ installed %d step definitions and component types into %s", n, definition.DefaultSystemNamespace)
	// Runs act as their namespace's stepflow-runner (the controller's
	// multi-tenant default): give the example's one what it needs.
	if err := tenancy.SetUpRunner(ctx, c, exampleNamespace, tenancy.DefaultServiceAccount, exampleRunnerRules); err != nil {
		return err
	}
	say("▶ runs in %s act as ServiceAccount %s/%s (Role %s: ConfigMaps, workloads, Services, WorkflowRuns)", exampleNamespace, exampleNamespace, tenancy.DefaultServiceAccount, tenancy.DefaultServiceAccount)

	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	ctrlDone := make(chan error, 1)
	go func() {
		ctrlDone <- startController(ctrlCtx, &controllerOptions{
			systemNamespace: definition.DefaultSystemNamespace, concurrency: 8, parallelism: 8,
			qps: 100, burst: 200, metricsAddr: "0", probeAddr: "0",
			// The demo endpoint listens on loopback.
			httpAllowCIDRs: []string{"127.0.0.0/8", "::1"},
		}, cfg)
	}()
	defer func() { stopCtrl(); <-ctrlDone }()
	say("▶ controller running")

	endpoint, err := serveDemoEndpoint(ctx)
	if err != nil {
		return err
	}
	go markDeploymentsReady(ctx, c)
	// Nothing runs pods here: report the example namespace's workloads up
	// as kubelets would, for the whole session, so that a gray release
	// launched by hand (stepflow launch, the REST API's curl) gets past
	// its rollouts too, not only the one --example gray-release plays.
	stopKubelet := kubelet.Start(c, exampleNamespace, 300*time.Millisecond)
	defer stopKubelet()

	apiURL, stopAPI, err := startLocalAPI(ctx, o.apiListen, kubeconfig)
	if err != nil {
		return err
	}
	defer stopAPI()
	say("▶ REST API (stepflow server, --auth none, loopback only) ready on %s; for example:", apiURL)
	say("  curl -s '%s/workflow?appId=%s'", apiURL, grayReleaseAppID)
	say("  curl -s --data-binary @examples/gray-release.yaml -H 'Content-Type: application/yaml' '%s/workflow/launch?appId=%s&category=DEPLOY'", apiURL, grayReleaseAppID)

	say("")
	say("  export KUBECONFIG=%s", kubeconfig)
	say("  %s get workflowruns        # kubectl from the control-plane build", filepath.Join(o.assets, "kubectl"))
	say("  stepflow --kubeconfig %s list", kubeconfig)
	say("")

	switch {
	case o.noExample:
	case o.example == grayReleaseExample:
		if err := runGrayRelease(ctx, c, "examples/gray-release.yaml", kubeconfig, say); err != nil {
			return err
		}
	default:
		if err := runExample(ctx, c, o.example, endpoint, kubeconfig, say); err != nil {
			return err
		}
	}
	say("▶ running; press Ctrl-C to stop")
	select {
	case <-ctx.Done():
	case err := <-ctrlDone:
		ctrlDone <- err
		return fmt.Errorf("the controller stopped: %w", err)
	}
	return nil
}

// exampleNamespace is where the example run and its objects live.
const exampleNamespace = "default"

// defaultLocalAPIListen is where `stepflow local` serves the REST API
// unless told otherwise: stepflow server's own default. The controller's
// metrics and probes are off locally, so nothing else of ours wants it.
const defaultLocalAPIListen = "127.0.0.1:8080"

// grayReleaseAppID is the appId of examples/gray-release.yaml, which the
// printed curl examples list and launch.
const grayReleaseAppID = "testapp"

// startLocalAPI serves the REST API as `stepflow server --auth none
// --listen listen --kubeconfig kubeconfig` does, on listen (on any free
// loopback port when listen is the default and its port is taken), and
// returns its base URL once /readyz answers 200. stop shuts it down and
// waits for it.
func startLocalAPI(ctx context.Context, listen, kubeconfig string) (base string, stop func(), err error) {
	so := &serverOptions{listen: listen, auth: "none", kubeconfig: kubeconfig,
		namespace: exampleNamespace, systemNamespace: definition.DefaultSystemNamespace,
		rateLimit: 20, burst: 40, reviewTTL: 5 * time.Second, shutdownDeadline: 5 * time.Second,
		kubeQPS: defaultServerKubeQPS, kubeBurst: defaultServerKubeBurst}
	if err := so.check(); err != nil {
		return "", nil, fmt.Errorf("--api-listen: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil && listen == defaultLocalAPIListen {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return "", nil, fmt.Errorf("the REST API server: listening on %s: %w", listen, err)
	}
	so.listen = ln.Addr().String()
	apiCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serveAPI(apiCtx, so, ln) }()
	stop = func() { cancel(); <-served }
	base = "http://" + ln.Addr().String()
	if err := waitReady(ctx, base+"/readyz", served); err != nil {
		stop()
		return "", nil, fmt.Errorf("the REST API server on %s: %w", base, err)
	}
	return base, stop, nil
}

// waitReady polls url until it answers 200, the server stops (served), ctx
// ends or a minute has passed.
func waitReady(ctx context.Context, url string, served chan error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := nethttp.DefaultClient.Do(req); err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == nethttp.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		select {
		case err := <-served:
			served <- err // for stop
			return fmt.Errorf("stopped before it was ready (%v)", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready (GET %s: %s): %w", url, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// exampleRunnerRules are the rights of the examples' stepflow-runner, in
// its own namespace only: the ConfigMaps export2config writes, the
// Deployment apply-and-wait applies and watches, and for the gray release
// the workloads and Services of its components and the runs a rollback
// reads and launches.
var exampleRunnerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "watch", "create"}},
}

func writeKubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "stepflow-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	b, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path, err := filepath.Abs(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b, 0o600)
}

// serveDemoEndpoint answers the example's HTTP step.
func serveDemoEndpoint(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/version", func(w nethttp.ResponseWriter, _ *nethttp.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"version": "1.2.3"})
	})
	srv := &nethttp.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return "http://" + ln.Addr().String(), nil
}

// markDeploymentsReady stands in for the kubelet and the deployment
// controller, which the local control plane does not run: it reports the
// demo's Deployments ready a moment after they appear.
func markDeploymentsReady(ctx context.Context, c client.WithWatch) {
	w, err := c.Watch(ctx, &appsv1.DeploymentList{}, client.MatchingLabels{"stepflow.dev/demo": "true"})
	if err != nil {
		return
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || d.Spec.Replicas == nil || d.Status.ReadyReplicas == *d.Spec.Replicas {
			continue
		}
		time.Sleep(time.Second)
		d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = *d.Spec.Replicas, *d.Spec.Replicas, *d.Spec.Replicas
		_ = c.Status().Update(ctx, d)
	}
}

func runExample(ctx context.Context, c client.WithWatch, path, endpoint, kubeconfig string, say func(string, ...any)) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var run v1alpha1.WorkflowRun
	if err := yaml.UnmarshalStrict([]byte(strings.ReplaceAll(string(raw), "${ENDPOINT}", endpoint)), &run); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Create(ctx, &run); err != nil {
		return fmt.Errorf("applying %s: %w", path, err)
	}
	say("▶ applied WorkflowRun %s/%s from %s", run.Namespace, run.Name, path)
	w, err := c.Watch(ctx, &v1alpha1.WorkflowRunList{}, client.InNamespace(run.Namespace))
	if err != nil {
		return err
	}
	defer w.Stop()
	seen := map[string]string{}
	resumed := false
	for ev := range w.ResultChan() {
		r, ok := ev.Object.(*v1alpha1.WorkflowRun)
		if !ok || r.Name != run.Name {
			continue
		}
		for _, s := range r.Status.Steps {
			state := string(s.Phase) + " " + s.Message
			if seen[s.Name] == state {
				continue
			}
			seen[s.Name] = state
			line := fmt.Sprintf("  %s  %-14s %-10s", time.Now().Format("15:04:05"), s.Name, s.Phase)
			if s.Message != "" {
				line += "  " + s.Message
			}
			for _, out := range s.Outputs {
				line += fmt.Sprintf("  %s=%s", out.Name, out.Value.Raw)
			}
			say("%s", line)
			if s.Name == "approve" && s.Phase == v1alpha1.WorkflowStepPhaseSuspending && !resumed {
				resumed = true
				if err := resumeThroughCLI(ctx, r, kubeconfig, say); err != nil {
					return err
				}
			}
		}
		if r.Status.Finished {
			say("▶ run %s %s", r.Name, r.Status.Phase)
			var cm corev1.ConfigMap
			if err := c.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: "demo-result"}, &cm); err == nil {
				say("  ConfigMap demo-result: %v", cm.Data)
			}
			return nil
		}
	}
	return ctx.Err()
}

// resumeThroughCLI resumes the run the way a person would: with the
// stepflow command.
func resumeThroughCLI(ctx context.Context, r *v1alpha1.WorkflowRun, kubeconfig string, say func(string, ...any)) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	args := []string{"--kubeconfig", kubeconfig, "-n", r.Namespace, "resume", r.Name}
	say("  $ stepflow %s", strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, self, args...).CombinedOutput()
	if len(out) > 0 {
		say("    %s", strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("stepflow resume: %w", err)
	}
	return nil
}
