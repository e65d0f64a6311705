// Package testenv runs a real kube-apiserver and etcd for tests, through
// controller-runtime's envtest.
//
// The binaries come from $KUBEBUILDER_ASSETS when it is set, and otherwise
// from hack/control-plane.sh, which builds them once into a cache and prints
// their directory. Starting a control plane takes seconds, so a package
// should start one in TestMain and share it:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) {
//		var stop func()
//		env, stop = testenv.StartMain()
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
// Start does the same for a single test and stops the control plane when the
// test ends. There is no controller-manager: nothing reconciles Deployments,
// and deleted namespaces stay Terminating, so tests should use fresh names.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a client for Config using Scheme.
	Client client.Client
	Scheme *runtime.Scheme

	env *envtest.Environment
}

// Option configures Start and StartMain.
type Option func(*options)

type options struct {
	scheme       *runtime.Scheme
	crdDirs      []string
	stepflowCRDs bool
}

// WithScheme makes Env.Client use s instead of client-go's scheme.
func WithScheme(s *runtime.Scheme) Option {
	return func(o *options) { o.scheme = s }
}

// WithCRDs installs the CRDs of the Helm chart (charts/stepflow/crds) when
// that directory holds any files.
func WithCRDs() Option {
	return func(o *options) { o.stepflowCRDs = true }
}

// WithCRDDirs installs the CRDs found in dirs; a missing dir is an error.
func WithCRDDirs(dirs ...string) Option {
	return func(o *options) { o.crdDirs = append(o.crdDirs, dirs...) }
}

// Start starts a control plane for t and stops it when t ends. It fails t,
// rather than skipping it, when the control plane cannot start.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	e, err := start(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := e.env.Stop(); err != nil {
			t.Errorf("testenv: stopping the control plane: %v", err)
		}
	})
	return e
}

// StartMain starts a control plane for a TestMain, which has no testing.TB:
// on failure it prints why and exits the test binary with status 1. Call
// stop after m.Run.
func StartMain(opts ...Option) (env *Env, stop func()) {
	e, err := start(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		os.Exit(1)
	}
	return e, func() {
		if err := e.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stopping the control plane: %v\n", err)
		}
	}
}

func start(opts []Option) (*Env, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.scheme == nil {
		o.scheme = scheme.Scheme
	}
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	crdDirs := o.crdDirs
	if o.stepflowCRDs {
		dir, ok, err := chartCRDs()
		if err != nil {
			return nil, err
		}
		if ok {
			crdDirs = append(crdDirs, dir)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		_ = env.Stop() // the client error is the one to report
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: o.scheme, env: env}, nil
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl:
// $KUBEBUILDER_ASSETS if set, otherwise what hack/control-plane.sh prints
// (it builds the binaries on first use, which takes minutes).
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, checkAssets(dir, "$KUBEBUILDER_ASSETS")
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "control-plane.sh")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("no control-plane binaries: KUBEBUILDER_ASSETS is unset and %s failed: %v\n%s",
			script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	return dir, checkAssets(dir, script)
}

func checkAssets(dir, from string) error {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("no %s in %q (from %s): %w", bin, dir, from, err)
		}
	}
	return nil
}

// chartCRDs returns charts/stepflow/crds and whether it holds any files.
func chartCRDs() (string, bool, error) {
	root, err := repoRoot()
	if err != nil {
		return "", false, err
	}
	dir := filepath.Join(root, "charts", "stepflow", "crds")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dir, false, nil
	}
	if err != nil {
		return "", false, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			return dir, true, nil
		}
	}
	return dir, false, nil
}

// repoRoot walks up from the working directory (a test's package directory)
// to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: cannot find hack/control-plane.sh")
		}
		dir = parent
	}
}

// Kubeconfig writes a kubeconfig for an administrator of the control plane
// into dir and returns its path, for tests that drive the CLI.
func (e *Env) Kubeconfig(dir string) (string, error) {
	user, err := e.env.AddUser(envtest.User{Name: "stepflow-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	b, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// User returns a config that reaches the control plane as user name in
// groups, authenticated by a client certificate: with no groups it has no
// rights until a test binds it some (the API server authorizes with RBAC).
func (e *Env) User(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}
