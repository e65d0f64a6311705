package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/internal/kubelet"
	"github.com/stepflow-dev/stepflow/internal/testenv"
)

// Cluster is a second control plane (etcd and kube-apiserver, no CRDs of
// ours: Stepflow does not run there) that specs join to the first with
// `stepflow cluster join`, the way a workload cluster is joined to a hub.
type Cluster struct {
	Name string
	// Kubeconfig reaches it as an administrator; that is what joins it.
	Kubeconfig string
	Client     client.Client
	env        *envtest.Environment
}

// StartCluster starts a control plane of its own under the name name.
func (f *Framework) StartCluster(name string) (*Cluster, error) {
	assets, err := testenv.Assets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute, // as internal/testenv: under make test other suites share the two cores
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane of cluster %s: %w", name, err)
	}
	c := &Cluster{Name: name, env: env}
	user, err := env.AddUser(envtest.User{Name: "stepflow-e2e-" + name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	c.Kubeconfig = filepath.Join(f.Dir, "kubeconfig-"+name)
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		_ = env.Stop()
		return nil, err
	}
	scheme, err := api.NewScheme()
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	if c.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops the cluster's control plane.
func (c *Cluster) Stop() error {
	if c == nil || c.env == nil {
		return nil
	}
	err := c.env.Stop()
	c.env = nil
	return err
}

// Kubelet reports the workloads of namespace ready as their controllers
// would once the pods are up (see internal/kubelet). Stop it with the
// returned function.
func Kubelet(c client.Client, namespace string, interval time.Duration) (stop func()) {
	return kubelet.Start(c, namespace, interval)
}
