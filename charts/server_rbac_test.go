package charts

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/testenv"
)

// TestServerRBACIsEnough runs the real `stepflow server` as the chart's
// server ServiceAccount, holding exactly the roles the chart renders for it
// and nothing else, against a real API server, with --auth kubernetes (its
// TokenReviews and SubjectAccessReviews are its own calls too), and drives
// what it does with the cluster through HTTP as a user with a token: two
// launches (the instance id counter created, then updated), one with a
// configuration large enough for its own ConfigMap; list, get and tasks
// (from the cache); operations through pkg/runop (context into the
// journal ConfigMap, terminate: the status, the audit annotation); a log
// stream (watches of the run and its journal); the audit Events. A rule
// the server needs and the chart leaves out fails here;
// TestServerDefaults pins that there is no more.
func TestServerRBACIsEnough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and builds the binary")
	}
	env := testenv.Start(t, testenv.WithCRDs())
	ctx := context.Background()
	c := env.Client

	const system, tenant, users = "vela-system", "team-a", "users"
	for _, ns := range []string{namespace, system, tenant, users} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// The chart's server objects and the shipped definitions, as helm
	// would install them.
	r := render(t, "")
	var installed []string
	for _, u := range r {
		kind := u.GetKind()
		server := u.GetLabels()["app.kubernetes.io/component"] == "server"
		if server && (kind == "ServiceAccount" || strings.Contains(kind, "Role")) || kind == "WorkflowStepDefinition" || kind == "ComponentDefinition" {
			if err := c.Create(ctx, u.DeepCopy()); err != nil {
				t.Fatalf("installing %s %s: %v", kind, u.GetName(), err)
			}
			if server {
				installed = append(installed, kind+" "+u.GetName())
			}
		}
	}
	if len(installed) != 5 {
		t.Fatalf("installed %v, want the server's ServiceAccount, ClusterRole(Binding) and Role(Binding)", installed)
	}

	// The server's identity: its ServiceAccount's user name, so the
	// chart's bindings (subject ServiceAccount stepflow-system/stepflow-server)
	// are all it has.
	sa, err := env.User("system:serviceaccount:"+namespace+":"+serverName, "system:serviceaccounts", "system:serviceaccounts:"+namespace, "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := writeKubeconfig(t, sa, filepath.Join(dir, "kubeconfig"))

	// A portal user: may read, launch and operate in the tenant namespace.
	portal := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: users, Name: "portal"}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "portal"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "create", "update"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "portal"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "portal"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: users, Name: "portal"}}}
	for _, o := range []client.Object{portal, role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(users).CreateToken(ctx, "portal", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token

	// The server as the chart runs it (but on loopback, port any).
	bin := buildStepflow(t, dir)
	cmd := exec.Command(bin, "server", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--auth", "kubernetes",
		"--namespace", tenant, "--system-namespace", system)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base, logs := serving(t, stderr)

	call := func(method, path, contentType, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatalf("%s %s: %s, not JSON: %v", method, path, resp.Status, err)
		}
		return resp.StatusCode, env
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if code, _ := call(http.MethodGet, "/readyz", "", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after a minute; the server said:\n%s", logs())
		}
	}

	doc, err := os.ReadFile("../examples/gray-release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Above pkg/app's 32 KiB inline limit: kept in a ConfigMap of its own.
	large := string(doc) + "\n#" + strings.Repeat(" padding", 5000) + "\n"
	var ids []int64
	for _, body := range []string{string(doc), large} {
		code, got := call(http.MethodPost, "/workflow/launch?appId=testapp&category=DEPLOY", "application/yaml", body)
		if code != http.StatusOK {
			t.Fatalf("launch (%d bytes): %d %v\nthe server said:\n%s", len(body), code, got, logs())
		}
		ids = append(ids, int64(got["data"].(map[string]any)["id"].(float64)))
	}
	if ids[0] < 1 || ids[1] != ids[0]+1 {
		t.Errorf("instance ids %v: want consecutive ids from the counter", ids)
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, client.InNamespace(tenant)); err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) == 0 {
		t.Errorf("no configuration ConfigMap for the large launch in %s", tenant)
	}

	for _, path := range []string{
		"/workflow?appId=testapp",
		fmt.Sprintf("/workflow/%d", ids[1]),
		fmt.Sprintf("/workflow/%d/tasks", ids[0]),
		fmt.Sprintf("/workflow/%d/tasks/3", ids[0]),
	} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			code, got := call(http.MethodGet, path, "", "")
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d %v\nthe server said:\n%s", path, code, got, logs())
			}
		}
	}

	// Operations: the context goes into the run's journal (a ConfigMap
	// created, then patched), terminate writes the status; each records
	// who did it on the run.
	for _, op := range []struct{ path, body string }{
		{fmt.Sprintf("/workflow/%d/context", ids[0]), `{"context": {"continueRollout": true, "rollback": false}}`},
		{fmt.Sprintf("/workflow/%d/context", ids[0]), `{"context": {"continueRollout": false}}`},
		{fmt.Sprintf("/workflow/%d/terminate", ids[0]), ""},
	} {
		if code, got := call(http.MethodPut, op.path, "application/json", op.body); code != http.StatusOK {
			t.Fatalf("PUT %s: %d %v\nthe server said:\n%s", op.path, code, got, logs())
		}
	}
	code, got := call(http.MethodGet, fmt.Sprintf("/workflow/%d", ids[0]), "", "")
	if data, _ := got["data"].(map[string]any); code != http.StatusOK || data["workflowStatus"] != "TERMINATED" {
		t.Errorf("after terminate: %d %v", code, got)
	}

	// A log stream of the terminated run watches it and its journal, and
	// ends with an "end" event, not an "error".
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/workflow/%d/tasks/1/logs?follow=true", base, ids[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	streamCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(streamCtx))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(stream), "event: end") || strings.Contains(string(stream), "event: error") {
		t.Errorf("log stream: %s, %v:\n%s\nthe server said:\n%s", resp.Status, err, stream, logs())
	}

	// The audit Events, written with the server's own rights.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var events corev1.EventList
		if err := c.List(ctx, &events, client.InNamespace(tenant)); err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, e := range events.Items {
			reasons[e.Reason]++
		}
		if reasons["Launched"] == len(ids) && reasons["Operated"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events in %s by reason: %v, want %d Launched and the operations'; the server said:\n%s", tenant, reasons, len(ids), logs())
		}
	}
	if l := logs(); strings.Contains(l, "forbidden") {
		t.Errorf("the server was refused something:\n%s", l)
	}
}

// buildStepflow builds the stepflow binary into dir.
func buildStepflow(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go on PATH to build stepflow: %v", err)
	}
	bin := filepath.Join(dir, "stepflow")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/stepflow")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stepflow: %v\n%s", err, out)
	}
	return bin
}

// serving reads the server's stderr until it says where it serves, and
// keeps reading it; logs returns what it said.
func serving(t *testing.T, stderr io.Reader) (base string, logs func() string) {
	t.Helper()
	lines := make(chan string, 1024)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var said []string
	drain := func() {
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return
				}
				said = append(said, l)
			default:
				return
			}
		}
	}
	logs = func() string { drain(); return strings.Join(said, "\n") }
	addr := regexp.MustCompile(`serving (http://127\.0\.0\.1:[0-9]+)`)
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited before serving:\n%s", strings.Join(said, "\n"))
			}
			said = append(said, l)
			if m := addr.FindStringSubmatch(l); m != nil {
				return m[1], logs
			}
		case <-timeout:
			t.Fatalf("the server did not say where it serves within a minute:\n%s", strings.Join(said, "\n"))
		}
	}
}

// writeKubeconfig writes a kubeconfig of cfg (a client certificate user)
// to path.
func writeKubeconfig(t *testing.T, cfg *rest.Config, path string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["server"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["server"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "server"}
	kc.CurrentContext = "server"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
