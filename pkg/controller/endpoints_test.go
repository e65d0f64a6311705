package controller_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// serviceAccountToken creates ServiceAccount ns/name and returns a token
// of it.
func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("token of %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The secure metrics endpoint answers only callers whose token the API
// server authenticates and authorizes for GET /metrics.
func TestMetricsEndpointAuthenticatesAndAuthorizes(t *testing.T) {
	ns := namespace(t, "metrics-auth")
	reader := serviceAccountToken(t, ns, "prometheus")
	stranger := serviceAccountToken(t, ns, "stranger")
	for _, o := range []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-auth-reader"},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-auth-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-auth-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}}},
	} {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}

	addr := freeAddr(t)
	mgr, err := controller.NewManager(env.Config, ctrl.Options{
		Metrics:                controller.MetricsServer(controller.Endpoint{Addr: addr, Secure: true}),
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The certificate is self-signed: this test checks who gets in, not
	// the certificate.
	hc := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	get := func(scheme, token string) (int, string, error) {
		req, err := nethttp.NewRequest(nethttp.MethodGet, scheme+"://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, err := get("https", "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics endpoint never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, c := range []struct {
		name, token string
		want        int // 0: anything but 200
	}{
		{"no token", "", nethttp.StatusUnauthorized},
		// controller-runtime v0.20 answers 500 when the TokenReview fails.
		{"a token the API server does not know", "not-a-token", 0},
		{"a ServiceAccount without the metrics role", stranger, nethttp.StatusForbidden},
		{"a ServiceAccount bound to the metrics role", reader, nethttp.StatusOK},
	} {
		code, body, err := get("https", c.token)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (c.want == 0 && code == nethttp.StatusOK) || (c.want != 0 && code != c.want) {
			t.Errorf("%s: status %d, want %d (%s)", c.name, code, c.want, strings.TrimSpace(body))
		}
		if code == nethttp.StatusOK && !strings.Contains(body, "# TYPE") {
			t.Errorf("%s: not metrics: %.200s", c.name, body)
		}
	}
	if code, _, err := get("http", reader); err == nil && code == nethttp.StatusOK {
		t.Error("metrics served over plain HTTP")
	}
}
