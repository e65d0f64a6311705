package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/pkg/definition"
)

func TestServerOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		listen, auth, cert, key string
		refused                 string // "" when accepted
	}{
		{listen: "127.0.0.1:8080", auth: "none"},
		{listen: "[::1]:8080", auth: "none"},
		{listen: "localhost:8080", auth: "none"},
		{listen: ":8080", auth: "none", refused: "loopback"},
		{listen: "0.0.0.0:8080", auth: "none", refused: "loopback"},
		{listen: "10.0.0.5:8080", auth: "none", refused: "loopback"},
		{listen: "localhost.evil.example:8080", auth: "none", refused: "loopback"},
		{listen: ":8080", auth: "kubernetes"},
		{listen: ":8080", auth: "ldap", refused: "want kubernetes or none"},
		{listen: ":8443", auth: "kubernetes", cert: "tls.crt", refused: "go together"},
		{listen: ":8443", auth: "kubernetes", cert: "tls.crt", key: "tls.key"},
	} {
		o := serverOptions{listen: tc.listen, auth: tc.auth, tlsCert: tc.cert, tlsKey: tc.key}
		err := o.check()
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("--listen %s --auth %s: refused: %v", tc.listen, tc.auth, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("--listen %s --auth %s: got %v, want an error saying %q", tc.listen, tc.auth, err, tc.refused)
		}
	}
}

// TestServeAPI runs the server as the binary wires it (the cluster
// connection, its cache, the handler) against the test control plane,
// with --auth none on loopback: ready once its cache synced, then a
// launch over HTTP, read back by its numeric id.
func TestServeAPI(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "server-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	const system = "server-test-system"
	if _, err := definition.InstallDir(context.Background(), env.Client, "../../definitions", system); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &serverOptions{listen: ln.Addr().String(), auth: "none", kubeconfig: kc, namespace: ns.Name,
		systemNamespace: system, reviewTTL: time.Second, shutdownDeadline: time.Second}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveAPI(ctx, o, ln) }()
	base := "http://" + ln.Addr().String()

	get := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %v", path, resp.StatusCode, err)
		}
		return resp.StatusCode, env
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, _ := get("/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 after 30s")
		}
	}
	src, err := os.ReadFile("../../examples/gray-release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/workflow/launch?appId=testapp&category=DEPLOY", "application/yaml", bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	var launched struct {
		Code int `json:"code"`
		Data struct {
			ID              int64  `json:"id"`
			WorkflowCreator string `json:"workflowCreator"`
		} `json:"data"`
		Message string `json:"message"`
	}
	err = json.NewDecoder(resp.Body).Decode(&launched)
	resp.Body.Close()
	if err != nil || launched.Code != 200 || launched.Data.ID <= 0 || launched.Data.WorkflowCreator != "local" {
		t.Fatalf("launch: %+v, %v", launched, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := get(fmt.Sprintf("/workflow/%d", launched.Data.ID))
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET the launched instance: %d %v", code, body)
		}
	}
	// The UI as wired: its API, its event stream (the cache's informer)
	// and the embedded app at a deep link.
	if code, body := get("/ui/api/runs?namespace=" + ns.Name); code != http.StatusOK || len(body["items"].([]any)) != 1 {
		t.Errorf("GET /ui/api/runs: %d %v", code, body)
	}
	resp, err = http.Get(base + "/ui/api/events?namespace=" + ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	stream := bufio.NewReader(resp.Body)
	line, err := stream.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "event: run") {
		line, err = stream.ReadString('\n')
	}
	resp.Body.Close()
	if err != nil {
		t.Errorf("GET /ui/api/events: %d, no run event: %v", resp.StatusCode, err)
	}
	resp, err = http.Get(base + "/runs/" + ns.Name + "/some-run")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET a deep link: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// The server's client to the API server gets the controller's limits by
// default, not client-go's 5 requests a second, which made parallel
// launches wait on each other for seconds.
func TestServerClientLimits(t *testing.T) {
	kc, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flags := newServerCmd().Flags()
	for name, want := range map[string]string{"kube-api-qps": "50", "kube-api-burst": "100"} {
		if f := flags.Lookup(name); f == nil || f.DefValue != want {
			t.Errorf("--%s default: %v, want %s", name, f, want)
		}
	}
	for _, tc := range []struct {
		qps       float32
		burst     int
		wantQPS   float32
		wantBurst int
	}{
		{qps: defaultServerKubeQPS, burst: defaultServerKubeBurst, wantQPS: 50, wantBurst: 100},
		{qps: 7, burst: 9, wantQPS: 7, wantBurst: 9},
		{qps: 0, burst: 0, wantQPS: 0, wantBurst: 0}, // client-go's defaults apply
	} {
		o := &serverOptions{kubeconfig: kc, kubeQPS: tc.qps, kubeBurst: tc.burst}
		cfg, err := o.restConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.QPS != tc.wantQPS || cfg.Burst != tc.wantBurst {
			t.Errorf("qps %g burst %d: config has %g, %d; want %g, %d", tc.qps, tc.burst, cfg.QPS, cfg.Burst, tc.wantQPS, tc.wantBurst)
		}
	}
}
