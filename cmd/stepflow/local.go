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
	"runtime"
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
	"github.com/stepflow-dev/stepflow/web"
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
	autoApprove bool
	// metricsListen is where the controller serves its metrics.
	metricsListen string
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
Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal), then shuts
everything down; a second signal stops it at once. etcd and kube-apiserver
die with it even when it is killed (Linux: a parent-death signal), and
its shutdown does not depend on its output being read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A write to a pipe whose reader is gone (make run | tee, then
			// Ctrl-C) fails with EPIPE instead of killing the process
			// before it has stopped its control plane.
			signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			go func() { <-ctx.Done(); stop() }() // the next signal's default action ends it
			out := newLineOut(cmd.OutOrStdout())
			defer out.Close(2 * time.Second)
			// The kernel sends a child's parent-death signal when the
			// thread that started it ends: start them from this goroutine,
			// pinned to a thread that lives as long as the command.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			return runLocal(ctx, out, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with kube-apiserver, etcd and kubectl (default $KUBEBUILDER_ASSETS)")
	f.StringVar(&o.crds, "crds", "charts/stepflow/crds", "directory of the CRDs to install")
	f.StringVar(&o.definitions, "definitions", "definitions", "directory of the step definitions (.cue) to install")
	f.StringVar(&o.example, "example", "examples/demo.yaml", `the example WorkflowRun to apply, or "gray-release": launch and promote, then launch and roll back, the application of examples/gray-release.yaml`)
	f.StringVar(&o.stateDir, "state-dir", ".stepflow", "where to write the kubeconfig")
	f.BoolVar(&o.noExample, "no-example", false, "do not apply the example run")
	f.BoolVar(&o.autoApprove, "auto-approve", false, "resume the example's approval step without waiting for a person (unattended runs)")
	f.StringVar(&o.metricsListen, "metrics-listen", defaultLocalMetricsListen, "loopback address of the controller's Prometheus metrics (plain HTTP, unauthenticated); when the default's port is taken, any free port of 127.0.0.1")
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
	shim, err := parentDeathShim(filepath.Join(o.stateDir, "bin"), o.assets)
	if err != nil {
		return err
	}
	// envtest's own override of each binary's path (it outranks
	// KUBEBUILDER_ASSETS): the shim's links, where there are some.
	for name, path := range shim {
		os.Setenv("TEST_ASSET_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")), path)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: o.assets, CRDDirectoryPaths: []string{o.crds}, ErrorIfCRDPathMissing: true,
		ControlPlaneStopTimeout: 10 * time.Second}
	cfg, err := env.Start()
	children := controlPlaneChildren()
	if err != nil {
		killGroups(children)
		return fmt.Errorf("starting the local control plane: %w", err)
	}
	defer func() {
		say("▶ stopping the control plane")
		if err := env.Stop(); err != nil {
			say("  stopping the control plane: %v; killing its process groups", err)
		}
		killGroups(children)
	}()
	for _, c := range children {
		say("  %s: pid %d", c.name, c.pid)
	}
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

	metricsAddr, err := loopbackAddr(o.metricsListen, defaultLocalMetricsListen)
	if err != nil {
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	ctrlDone := make(chan error, 1)
	go func() {
		ctrlDone <- startController(ctrlCtx, &controllerOptions{
			systemNamespace: definition.DefaultSystemNamespace, concurrency: 8, parallelism: 8,
			qps: 100, burst: 200, metricsAddr: metricsAddr, probeAddr: "0",
			// The demo endpoint listens on loopback.
			httpAllowCIDRs: []string{"127.0.0.0/8", "::1"},
		}, cfg)
	}()
	defer func() { stopCtrl(); <-ctrlDone }()
	metricsURL := "http://" + metricsAddr + "/metrics"
	if err := waitReady(ctx, metricsURL, ctrlDone); err != nil {
		return fmt.Errorf("the controller's metrics on %s: %w", metricsURL, err)
	}
	say("▶ controller running; its Prometheus metrics (stepflow_*) are on %s", metricsURL)

	endpoint, err := serveDemoEndpoint(ctx)
	if err != nil {
		return err
	}
	go markDeploymentsReady(ctx, c)
	say("▶ no kube-controller-manager and no kubelet run here: a stand-in reports the Deployments and StatefulSets of namespace %s rolled out;", exampleNamespace)
	say("  a step that applies a workload in another namespace and waits for it waits until its timeout")
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
	if web.Built() {
		say("▶ web UI: open %s/ in a browser (runs live, their graphs, approve and roll back)", apiURL)
	} else {
		say("▶ web UI: this binary was built without it (%s/ shows how); make run builds it, or make ui then make build", apiURL)
	}

	self := selfCommand()
	say("")
	say("  export KUBECONFIG=%s", kubeconfig)
	say("  %s get workflowruns        # kubectl from the control-plane build", filepath.Join(o.assets, "kubectl"))
	say("  %s list", self)
	say("")

	switch {
	case o.noExample:
	case o.example == grayReleaseExample:
		if err := runGrayRelease(ctx, c, "examples/gray-release.yaml", kubeconfig, say); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	default:
		if err := runExample(ctx, c, o.example, endpoint, kubeconfig, o.autoApprove, say); err != nil {
			if ctx.Err() != nil {
				return nil // stopped by a signal while the example ran
			}
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
// metrics listen on defaultLocalMetricsListen, and its probes are off.
const defaultLocalAPIListen = "127.0.0.1:8080"

// defaultLocalMetricsListen is where `stepflow local` serves the
// controller's metrics unless told otherwise.
const defaultLocalMetricsListen = "127.0.0.1:8090"

// loopbackAddr returns listen if it is a loopback address free to listen
// on; when it is the default and its port is taken, a free port of
// 127.0.0.1. The controller binds it itself a moment later.
func loopbackAddr(listen, def string) (string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("%s is not a loopback address: the local metrics are unauthenticated", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil && listen == def {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

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

// selfCommand is how to type this binary from the working directory:
// relative when it lies below it (bin/stepflow under make run), else
// absolute.
func selfCommand() string {
	self, err := os.Executable()
	if err != nil {
		return "stepflow"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, self); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
	}
	return self
}

// runExample applies the example run and prints its steps as they change
// until it finishes. At its approval step it prints the resume command to
// type, or with autoApprove runs it.
func runExample(ctx context.Context, c client.WithWatch, path, endpoint, kubeconfig string, autoApprove bool, say func(string, ...any)) error {
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
	seen := map[string]string{}
	resumed := false
	// The API server ends a watch after a while; a person may take longer
	// to approve.
	for ctx.Err() == nil {
		done, err := followExample(ctx, c, &run, kubeconfig, autoApprove, seen, &resumed, say)
		if err != nil || done {
			return err
		}
	}
	return ctx.Err()
}

// followExample watches run until it finishes (done) or the watch ends.
func followExample(ctx context.Context, c client.WithWatch, run *v1alpha1.WorkflowRun, kubeconfig string, autoApprove bool, seen map[string]string, resumed *bool, say func(string, ...any)) (done bool, err error) {
	w, err := c.Watch(ctx, &v1alpha1.WorkflowRunList{}, client.InNamespace(run.Namespace))
	if err != nil {
		return false, err
	}
	defer w.Stop()
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
			if s.Name == "approve" && s.Phase == v1alpha1.WorkflowStepPhaseSuspending && !*resumed {
				*resumed = true
				if !autoApprove {
					say("▶ step approve waits for you; to approve, type (in another terminal, from this directory):")
					say("  %s --kubeconfig %s -n %s resume %s", selfCommand(), kubeconfig, r.Namespace, r.Name)
					continue
				}
				if err := resumeThroughCLI(ctx, r, kubeconfig, say); err != nil {
					return false, err
				}
			}
		}
		if r.Status.Finished {
			say("▶ run %s %s", r.Name, r.Status.Phase)
			var cm corev1.ConfigMap
			if err := c.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: "demo-result"}, &cm); err == nil {
				say("  ConfigMap demo-result: %v", cm.Data)
			}
			return true, nil
		}
	}
	return false, nil
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
	say("  $ %s %s", selfCommand(), strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, self, args...).CombinedOutput()
	if len(out) > 0 {
		say("    %s", strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("stepflow resume: %w", err)
	}
	return nil
}
