package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// loadNamespace holds the runs and the ConfigMaps they write.
const loadNamespace = "load"

// The API server tells its clients apart by these users (in the audit log).
const (
	harnessUser    = "load-harness"
	controllerUser = "stepflow-controller"
)

// The harness's own step definitions, installed beside the shipped ones.
var (
	//go:embed load-wait.cue
	loadWaitDefinition []byte
	//go:embed load-wait-read.cue
	loadWaitReadDefinition []byte
)

// auditPolicy logs every request once it completes (a watch also when it
// starts), without bodies.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// cluster is the local control plane and what the harness needs of it.
type cluster struct {
	env    *envtest.Environment
	scheme *runtime.Scheme
	// harness is the harness's own client (user load-harness).
	harness client.WithWatch
	// controller reaches the API server as user stepflow-controller:
	// kubeconfig for the process, config in process.
	controllerKubeconfig string
	controllerConfig     *rest.Config
	// auditLog is "" without -audit.
	auditLog string
}

func startCluster(ctx context.Context, o options) (*cluster, error) {
	assets, err := controlPlaneAssets(o.assets)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, CRDDirectoryPaths: []string{o.crds}, ErrorIfCRDPathMissing: true}
	cl := &cluster{env: env}
	if o.audit {
		policy := filepath.Join(o.workDir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
			return nil, err
		}
		cl.auditLog = filepath.Join(o.workDir, "audit.log")
		_ = os.Remove(cl.auditLog)
		env.ControlPlane.GetAPIServer().Configure().
			Set("audit-policy-file", policy).
			Set("audit-log-path", cl.auditLog).
			Set("audit-log-format", "json").
			Set("audit-log-maxsize", "0")
	}
	logf("starting etcd and kube-apiserver from %s", assets)
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			cl.stop()
		}
	}()

	if cl.scheme, err = api.NewScheme(); err != nil {
		return nil, err
	}
	harness, err := env.AddUser(envtest.User{Name: harnessUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	cfg := harness.Config()
	// The harness must not be what limits the load.
	cfg.QPS, cfg.Burst = 5000, 10000
	if cl.harness, err = client.NewWithWatch(cfg, client.Options{Scheme: cl.scheme}); err != nil {
		return nil, err
	}
	ctrlUser, err := env.AddUser(envtest.User{Name: controllerUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	cl.controllerConfig = ctrlUser.Config()
	kubeconfig, err := ctrlUser.KubeConfig()
	if err != nil {
		return nil, err
	}
	cl.controllerKubeconfig = filepath.Join(o.workDir, "controller.kubeconfig")
	if err := os.WriteFile(cl.controllerKubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}

	n, err := installDefinitions(ctx, cl.harness, o.definitions)
	if err != nil {
		return nil, err
	}
	logf("installed the CRDs and %d step definitions", n)
	if err := cl.harness.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loadNamespace}}); err != nil {
		return nil, err
	}
	// The runs act as the namespace's stepflow-runner (the controller's
	// multi-tenant default): their steps apply, read and export to
	// ConfigMaps there, and the waits watch them.
	if err := tenancy.SetUpRunner(ctx, cl.harness, loadNamespace, tenancy.DefaultServiceAccount, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	}); err != nil {
		return nil, err
	}
	ok = true
	return cl, nil
}

func (cl *cluster) stop() {
	if err := cl.env.Stop(); err != nil {
		logf("stopping the control plane: %v", err)
	}
}

// controlPlaneAssets is dir, or what hack/control-plane.sh prints (it builds
// the binaries once and caches them).
func controlPlaneAssets(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	out, err := exec.Command("hack/control-plane.sh").Output()
	if err != nil {
		return "", fmt.Errorf("hack/control-plane.sh: %w (or pass -assets)", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// installDefinitions installs the shipped definitions and the harness's
// into the system namespace and returns how many.
func installDefinitions(ctx context.Context, c client.Client, dir string) (int, error) {
	ns := definition.DefaultSystemNamespace
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.cue"))
	if err != nil {
		return 0, err
	}
	var srcs []eval.DefinitionSource
	for _, f := range files {
		src, err := definition.FromFile(f)
		if err != nil {
			return 0, err
		}
		srcs = append(srcs, src)
	}
	for name, src := range map[string][]byte{"load-wait.cue": loadWaitDefinition, "load-wait-read.cue": loadWaitReadDefinition} {
		def, err := eval.ParseDefinitionSource(name, src)
		if err != nil {
			return 0, err
		}
		srcs = append(srcs, def)
	}
	for _, src := range srcs {
		def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Name: src.Name, Namespace: ns,
			Annotations: map[string]string{"definition.oam.dev/description": src.Description}}}
		def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: src.Manifest}}
		if err := c.Create(ctx, def); err != nil {
			return 0, fmt.Errorf("installing definition %s: %w", src.Name, err)
		}
	}
	return len(srcs), nil
}

// answerServer answers the request step on 127.0.0.1 and counts the
// requests, in all and by the run named in the query (?run=).
type answerServer struct {
	url      string
	requests atomic.Int64

	mu    sync.Mutex
	byRun map[string]int
}

// perRun returns a copy of the request counts by run.
func (a *answerServer) perRun() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int, len(a.byRun))
	for k, v := range a.byRun {
		out[k] = v
	}
	return out
}

func serveAnswer(ctx context.Context) (*answerServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &answerServer{url: "http://" + ln.Addr().String() + "/answer", byRun: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/answer", func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		a.mu.Lock()
		a.byRun[r.URL.Query().Get("run")]++
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"answer": "42"})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return a, nil
}
