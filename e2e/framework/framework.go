// Package framework runs Stepflow end to end for the Ginkgo suites in e2e/.
//
// A Framework is one local installation: etcd and kube-apiserver started
// through envtest (no kubelet, no controller-manager: nothing reconciles
// Deployments, and a deleted namespace stays Terminating), the stepflow
// binary built from this repository, a kubeconfig for it, and the controller
// running as a separate process that a test can kill and start again. Tests
// act the way a user does, through the CLI (Stepflow), and read the results
// through Client.
//
// The methods return errors rather than failing the test, so the suite
// decides what is fatal; the matchers (HavePhase, HaveStepPhase, ...) and
// the HTTP Endpoint are for the specs.
package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

const (
	// cliTimeout bounds one CLI command: none of them waits for a run here.
	cliTimeout = time.Minute
	// readTimeout bounds one read of an object.
	readTimeout = 10 * time.Second
)

// Framework is one local Stepflow installation under test.
type Framework struct {
	// Root is the repository: go.mod, cmd/stepflow, definitions/, charts/.
	Root string
	// Dir holds the binary, the kubeconfig, the controller's log and the
	// files the specs write.
	Dir string
	// Binary is the stepflow binary built by Build.
	Binary string
	// Kubeconfig reaches the control plane as an administrator.
	Kubeconfig string
	// Client reads and writes the control plane directly, for what the CLI
	// does not do (a Deployment's status, a ConfigMap's data).
	Client client.Client

	env *envtest.Environment

	mu         sync.Mutex
	controller *process
	started    int
}

// New returns a Framework for the repository at root that keeps its files
// in dir. Nothing runs yet.
func New(root, dir string) *Framework {
	return &Framework{Root: root, Dir: dir, Binary: filepath.Join(dir, "stepflow")}
}

// RepoRoot walks up from the working directory (a test's package
// directory) to the directory holding go.mod.
func RepoRoot() (string, error) {
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
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles ./cmd/stepflow into Binary.
func (f *Framework) Build(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", f.Binary, "./cmd/stepflow")
	cmd.Dir = f.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/stepflow: %w\n%s", err, out)
	}
	return nil
}

// StartControlPlane starts etcd and kube-apiserver (binaries from
// $KUBEBUILDER_ASSETS, else hack/control-plane.sh), installs the chart's
// CRDs, writes Kubeconfig and connects Client.
func (f *Framework) StartControlPlane() error {
	assets, err := testenv.Assets()
	if err != nil {
		return err
	}
	f.env = &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(f.Root, "charts", "stepflow", "crds")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute, // as internal/testenv: under make test other suites share the two cores
	}
	cfg, err := f.env.Start()
	if err != nil {
		f.env = nil
		return fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	user, err := f.env.AddUser(envtest.User{Name: "stepflow-e2e", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	f.Kubeconfig = filepath.Join(f.Dir, "kubeconfig")
	if err := os.WriteFile(f.Kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	scheme, err := api.NewScheme()
	if err != nil {
		return err
	}
	f.Client, err = client.New(cfg, client.Options{Scheme: scheme})
	return err
}

// StopControlPlane stops kube-apiserver and etcd, if they run.
func (f *Framework) StopControlPlane() error {
	if f.env == nil {
		return nil
	}
	err := f.env.Stop()
	f.env = nil
	return err
}

// CreateNamespace creates the namespace name, one that exists is fine, and
// its stepflow-runner ServiceAccount, which its runs act as, allowed
// RunnerRules there.
func (f *Framework) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := f.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return tenancy.SetUpRunner(ctx, f.Client, name, tenancy.DefaultServiceAccount, RunnerRules)
}

// RunnerRules are what the suites' runs may do in their own namespace: the
// chart's default stepflow-runner rules.
var RunnerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
}

// WriteFile writes content to name under Dir and returns its path, for
// `stepflow run -f` and `stepflow def apply -f`.
func (f *Framework) WriteFile(name, content string) (string, error) {
	path := filepath.Join(f.Dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(content), 0o644)
}

// ApplyFile writes content to ns/file under Dir and runs
// `stepflow -n ns VERB... -f path` on it: verb "run" for runs and
// Workflows, "def", "apply" for a step definition.
func (f *Framework) ApplyFile(ns, file, content string, verb ...string) error {
	path, err := f.WriteFile(filepath.Join(ns, file), content)
	if err != nil {
		return err
	}
	args := append(append([]string{"-n", ns}, verb...), "-f", path)
	return f.Stepflow(args...).Err()
}

// InstallDefinitions creates namespace ns and installs the shipped step
// and component definitions (definitions/*.cue, definitions/components/
// *.cue) into it with `stepflow def apply`, as a user does.
func (f *Framework) InstallDefinitions(ctx context.Context, ns string) error {
	if err := f.CreateNamespace(ctx, ns); err != nil {
		return err
	}
	args := []string{"-n", ns, "def", "apply"}
	for _, pattern := range []string{"*.cue", filepath.Join("components", "*.cue")} {
		found, err := filepath.Glob(filepath.Join(f.Root, "definitions", pattern))
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("no definitions match definitions/%s under %s", pattern, f.Root)
		}
		for _, d := range found {
			args = append(args, "-f", d)
		}
	}
	return f.Stepflow(args...).Err()
}

// Result is what one stepflow command did.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int
}

// String shows the command and everything it printed, for failure
// messages.
func (r Result) String() string {
	return fmt.Sprintf("$ stepflow %s\nexit code %d\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.Args, " "), r.ExitCode, indent(r.Stdout), indent(r.Stderr))
}

// Err is nil when the command exited 0, and otherwise says what it did.
func (r Result) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return errors.New(r.String())
}

// Stepflow runs the CLI against the control plane (--kubeconfig is added)
// and returns what it printed and its exit code. A command that cannot be
// started at all, or that runs past a minute, reports exit code -1.
func (f *Framework) Stepflow(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	res := Result{Args: args}
	cmd := exec.CommandContext(ctx, f.Binary, append([]string{"--kubeconfig", f.Kubeconfig}, args...)...)
	cmd.Dir = f.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		res.ExitCode = exit.ExitCode()
	default:
		res.ExitCode = -1
		res.Stderr += fmt.Sprintf("\n(framework: %v; context: %v)", err, ctx.Err())
	}
	return res
}

// Run returns a function that reads the run ns/name, for Eventually:
//
//	Eventually(f.Run(ns, "deploy")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
func (f *Framework) Run(ns, name string) func() (*v1alpha1.WorkflowRun, error) {
	return func() (*v1alpha1.WorkflowRun, error) {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		var run v1alpha1.WorkflowRun
		if err := f.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &run); err != nil {
			return nil, err
		}
		return &run, nil
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (nothing)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
