package clusters_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/cli"
	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// Two real API servers: hub runs Stepflow and holds the cluster Secrets,
// edge is the cluster joined to it.
var hub, edge *testenv.Env

func TestMain(m *testing.M) {
	h, stopHub := testenv.StartMain()
	e, stopEdge := testenv.StartMain()
	hub, edge = h, e
	code := m.Run()
	stopEdge()
	stopHub()
	os.Exit(code)
}

// fixture is one test's system namespace on the hub, a tenant namespace
// (on both clusters) and the registry of a multi-tenant controller.
type fixture struct {
	systemNS, tenantNS string
	hubConfig          string // an administrator's kubeconfig of the hub
	registry           *clusters.Registry
	// newRegistry builds another registry of the same controller, with cache.
	newRegistry func(cache *clusters.Cache) (*clusters.Registry, error)
	// newRegistryWith builds another registry of the same controller, with
	// the options more changes.
	newRegistryWith func(more func(*clusters.Options)) (*clusters.Registry, error)
}

func newFixture(t *testing.T, singleTenant bool) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{systemNS: createNamespace(t, hub, "sys-", ""), tenantNS: createNamespace(t, hub, "tenant-", "")}
	createNamespace(t, edge, "", f.tenantNS)
	dir := t.TempDir()
	path, err := hub.Kubeconfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.hubConfig = path
	// The tenant's runner may read the cluster Secrets edge, down and nowhere
	// (which does not exist).
	must(t, hub.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.systemNS, Name: "use-clusters"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"},
			ResourceNames: []string{"edge", "down", "nowhere"}}},
	}))
	must(t, hub.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.systemNS, Name: "use-clusters"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "use-clusters"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.tenantNS, Name: "runner"}},
	}))
	testenv.WaitAllowed(t, hub.Client, "system:serviceaccount:"+f.tenantNS+":runner",
		authorizationv1.ResourceAttributes{Namespace: f.systemNS, Verb: "get", Resource: "secrets", Name: "nowhere"})
	ids, err := tenancy.New(tenancy.Options{Config: hub.Config, Reader: hub.Client, Client: hub.Client})
	if err != nil {
		t.Fatal(err)
	}
	local := kube.LocalAs(func(_ context.Context, step op.Step) (client.Client, error) {
		return ids.For(tenancy.Of(step, ids.DefaultServiceAccount()))
	})
	f.newRegistryWith = func(more func(*clusters.Options)) (*clusters.Registry, error) {
		o := clusters.Options{
			SystemNamespace: f.systemNS, Local: local, SingleTenant: singleTenant,
			Secrets: func(_ context.Context, step op.Step) (client.Reader, error) {
				return ids.For(tenancy.Of(step, ids.DefaultServiceAccount()))
			},
		}
		more(&o)
		return clusters.New(o)
	}
	f.newRegistry = func(cache *clusters.Cache) (*clusters.Registry, error) {
		return f.newRegistryWith(func(o *clusters.Options) { o.Cache = cache })
	}
	f.registry, err = f.newRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func createNamespace(t *testing.T, env *testenv.Env, prefix, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix, Name: name}}
	must(t, env.Client.Create(context.Background(), ns))
	return ns.Name
}

// edgeTokenKubeconfig writes a kubeconfig that reaches edge with a bearer
// token of a ServiceAccount, bound to cluster-admin there (which may
// impersonate) when admin, and returns its path and the token.
func edgeTokenKubeconfig(t *testing.T, admin bool) (path, token string) {
	t.Helper()
	ctx := context.Background()
	ns := createNamespace(t, edge, "hub-", "")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stepflow-hub"}}
	must(t, edge.Client.Create(ctx, sa))
	if admin {
		must(t, edge.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-admin"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
		}))
	}
	tr := &authenticationv1.TokenRequest{}
	must(t, edge.Client.SubResource("token").Create(ctx, sa, tr))
	token = tr.Status.Token
	if token == "" {
		t.Fatal("the edge API server issued no token")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["edge"] = &clientcmdapi.Cluster{Server: edge.Config.Host, CertificateAuthorityData: edge.Config.CAData}
	cfg.AuthInfos["hub"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["edge"] = &clientcmdapi.Context{Cluster: "edge", AuthInfo: "hub"}
	cfg.CurrentContext = "edge"
	path = filepath.Join(t.TempDir(), "edge.kubeconfig")
	must(t, clientcmd.WriteToFile(*cfg, path))
	return path, token
}

// stepflow runs the CLI and returns its output, failing t on a non-zero exit.
func stepflow(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Main(cli.Deps{Stdout: &out, Stderr: &errOut}, args); code != 0 {
		t.Fatalf("stepflow %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// apply runs kube.apply of a ConfigMap in the step's namespace on cluster,
// through op.Direct as the engine does, as ServiceAccount sa of the tenant.
func (f *fixture) apply(t *testing.T, sa, cluster, name string) error {
	t.Helper()
	o := kube.New(f.registry).Ops()["apply"]
	params := o.NewParams()
	b, err := json.Marshal(map[string]any{"cluster": cluster, "value": map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}, "data": map[string]any{"a": "1"},
	}})
	must(t, err)
	must(t, json.Unmarshal(b, params))
	_, err = op.Direct.Run(context.Background(), &op.Call{
		Name: op.Name{Provider: "kube", Do: "apply"}, Path: "deploy.apply", Op: o, Params: params, Class: o.Class(params),
		Step: op.Step{RunUID: "uid", RunName: "run", Namespace: f.tenantNS, StepName: "deploy", StepID: "deploy-1", ServiceAccount: sa},
	})
	return err
}

// grantEdge lets the tenant's runner write ConfigMaps in its namespace on edge.
func (f *fixture) grantEdge(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	must(t, edge.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "configmaps"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}))
	must(t, edge.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.tenantNS, Name: "runner"}},
	}))
	testenv.WaitAllowed(t, edge.Client, "system:serviceaccount:"+f.tenantNS+":runner",
		authorizationv1.ResourceAttributes{Namespace: f.tenantNS, Verb: "patch", Resource: "configmaps"})
}

// exists reports whether ConfigMap name is in ns on env.
func exists(t *testing.T, env *testenv.Env, ns, name string) bool {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
	if apierrors.IsNotFound(err) {
		return false
	}
	must(t, err)
	return true
}

// noSecret fails t when an error holds one of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error holds a credential: %v", err)
		}
	}
}

func TestJoinThenApplyOnTheJoinedCluster(t *testing.T) {
	f := newFixture(t, false)
	kubeconfig, token := edgeTokenKubeconfig(t, true)
	out := stepflow(t, "cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	if !strings.Contains(out, "cluster edge joined") || strings.Contains(out, token) {
		t.Errorf("join printed %q", out)
	}
	list := stepflow(t, "cluster", "list", "--kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	if !strings.Contains(list, "edge") || !strings.Contains(list, "ServiceAccountToken") || !strings.Contains(list, edge.Config.Host) {
		t.Errorf("list printed %q, want edge, its type and endpoint", list)
	}
	if strings.Contains(list, token) {
		t.Errorf("list printed the token: %q", list)
	}

	// The step acts as its ServiceAccount's user on edge, which may do
	// nothing there yet: the Secret's token (cluster-admin) would have
	// passed, so this proves the impersonation.
	err := f.apply(t, "runner", "edge", "cm")
	if err == nil {
		t.Fatal("apply on edge passed before edge granted the runner anything: the step did not act as its ServiceAccount")
	}
	if !apierrors.IsForbidden(err) || !op.IsPermanent(err) || !strings.Contains(err.Error(), `cluster "edge" denies system:serviceaccount:`+f.tenantNS+":runner") {
		t.Errorf("want a permanent denial of system:serviceaccount:%s:runner by cluster edge, got %v", f.tenantNS, err)
	}
	noSecret(t, err, token)

	f.grantEdge(t)
	must(t, f.apply(t, "runner", "edge", "cm"))
	if !exists(t, edge, f.tenantNS, "cm") {
		t.Error("the ConfigMap is not on edge")
	}
	if exists(t, hub, f.tenantNS, "cm") {
		t.Error("the ConfigMap went to the hub too")
	}
	// "local" still is the hub.
	hubRole(t, f)
	must(t, f.apply(t, "runner", "local", "cm-local"))
	if !exists(t, hub, f.tenantNS, "cm-local") || exists(t, edge, f.tenantNS, "cm-local") {
		t.Error("cluster local did not go to the hub only")
	}

	// A ServiceAccount that may not read the cluster Secret cannot use it.
	err = f.apply(t, "stranger", "edge", "cm-stranger")
	if err == nil || !op.IsPermanent(err) || !strings.Contains(err.Error(), "secrets \"edge\"") {
		t.Errorf("a step whose ServiceAccount may not get the Secret: want a permanent denial naming it, got %v", err)
	}
	noSecret(t, err, token)

	// A rotated Secret (new resourceVersion) is a new connection: a token
	// edge rejects fails, the good one works again.
	const bogus = "bogus-SECRET-token"
	setToken(t, f, "edge", bogus)
	err = f.apply(t, "runner", "edge", "cm-2")
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("with a rotated bad token: want Unauthorized, got %v", err)
	}
	noSecret(t, err, token, bogus)
	setToken(t, f, "edge", token)
	must(t, f.apply(t, "runner", "edge", "cm-2"))

	stepflow(t, "cluster", "remove", "edge", "--kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	err = f.apply(t, "runner", "edge", "cm-3")
	if !op.IsPermanent(err) || !strings.Contains(err.Error(), `unknown cluster "edge"`) {
		t.Errorf("after cluster remove: want a permanent unknown cluster \"edge\", got %v", err)
	}
	noSecret(t, err, token)
}

// hubRole lets the tenant's runner write ConfigMaps in its namespace on the hub.
func hubRole(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	must(t, hub.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "configmaps"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}))
	must(t, hub.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.tenantNS, Name: "configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.tenantNS, Name: "runner"}},
	}))
	testenv.WaitAllowed(t, hub.Client, "system:serviceaccount:"+f.tenantNS+":runner",
		authorizationv1.ResourceAttributes{Namespace: f.tenantNS, Verb: "patch", Resource: "configmaps"})
}

func setToken(t *testing.T, f *fixture, name, token string) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	must(t, hub.Client.Get(ctx, client.ObjectKey{Namespace: f.systemNS, Name: name}, &s))
	s.Data[clusters.KeyToken] = []byte(token)
	must(t, hub.Client.Update(ctx, &s))
}

// A single-tenant controller acts on edge with the Secret's credentials.
func TestSingleTenantActsWithTheSecretsCredentials(t *testing.T) {
	f := newFixture(t, true)
	kubeconfig, _ := edgeTokenKubeconfig(t, true)
	stepflow(t, "cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	must(t, f.apply(t, "runner", "edge", "cm"))
	if !exists(t, edge, f.tenantNS, "cm") {
		t.Error("the ConfigMap is not on edge")
	}
}

func TestUnknownClusterIsPermanent(t *testing.T) {
	f := newFixture(t, false)
	err := f.apply(t, "runner", "nowhere", "cm")
	if err == nil || !op.IsPermanent(err) || !strings.Contains(err.Error(), `unknown cluster "nowhere"`) {
		t.Errorf("want a permanent error naming cluster nowhere, got %v", err)
	}
}

func TestUnreachableClusterIsRetryableAndNamed(t *testing.T) {
	f := newFixture(t, false)
	// A port nothing listens on any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	must(t, l.Close())
	const token = "tok-SECRET-unreachable"
	s, err := clusters.Secret(f.systemNS, "down", clusters.Credentials{
		Type: clusters.ServiceAccountToken, Endpoint: "https://" + addr, CA: edge.Config.CAData, Token: token,
	})
	must(t, err)
	must(t, hub.Client.Create(context.Background(), s))

	err = f.apply(t, "runner", "down", "cm")
	if err == nil {
		t.Fatal("apply on a cluster nothing listens for passed")
	}
	if op.IsPermanent(err) {
		t.Errorf("an unreachable cluster is permanent, want retryable: %v", err)
	}
	if !strings.Contains(err.Error(), `cluster "down" unreachable`) {
		t.Errorf("the error does not name the cluster: %v", err)
	}
	noSecret(t, err, token)
}

// Credentials that may not impersonate on the joined cluster are the
// install's fault: the step is retried, and the error says so.
func TestCredentialsThatMayNotImpersonateAreRetryable(t *testing.T) {
	f := newFixture(t, false)
	kubeconfig, token := edgeTokenKubeconfig(t, false)
	stepflow(t, "cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	f.grantEdge(t)
	err := f.apply(t, "runner", "edge", "cm")
	if !apierrors.IsForbidden(err) || op.IsPermanent(err) || !strings.Contains(err.Error(), `cluster "edge": the credentials in its Secret may not impersonate`) {
		t.Errorf("want a retryable error saying the Secret's credentials may not impersonate, got %v", err)
	}
	noSecret(t, err, token)
}

// stepflowFails runs the CLI, wanting a non-zero exit whose error says want.
func stepflowFails(t *testing.T, want string, args ...string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(cli.Deps{Stdout: &out, Stderr: &errOut}, args)
	if code == 0 || !strings.Contains(errOut.String(), want) {
		t.Errorf("stepflow %s: exit %d, stderr %q; want a failure saying %q", strings.Join(args, " "), code, errOut.String(), want)
	}
}

// join does not overwrite a joined cluster, and remove leaves alone a
// Secret that is not a cluster Secret.
func TestJoinAndRemoveRefuse(t *testing.T) {
	f := newFixture(t, false)
	kubeconfig, _ := edgeTokenKubeconfig(t, true)
	join := []string{"cluster", "join", "edge", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS}
	stepflow(t, join...)
	stepflowFails(t, "cluster edge is already joined", join...)
	stepflowFails(t, `cluster "local" is the local cluster's name`,
		"cluster", "join", "local", "--kubeconfig", kubeconfig, "--hub-kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)

	ctx := context.Background()
	must(t, hub.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.systemNS, Name: "db"}}))
	stepflowFails(t, "not a cluster Secret", "cluster", "remove", "db", "--kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	must(t, hub.Client.Get(ctx, client.ObjectKey{Namespace: f.systemNS, Name: "db"}, &corev1.Secret{}))
	stepflowFails(t, "not found", "cluster", "remove", "gone", "--kubeconfig", f.hubConfig, "--system-namespace", f.systemNS)
	if list := stepflow(t, "cluster", "list", "--kubeconfig", f.hubConfig, "--system-namespace", f.systemNS); strings.Contains(list, "db") {
		t.Errorf("list shows a Secret that is not a cluster Secret:\n%s", list)
	}
}
