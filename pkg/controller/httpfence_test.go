package controller_test

import (
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
)

// testHTTP is the suite's HTTP fence: a cluster install's, with loopback
// allowed explicitly for the tests' httptest servers.
var testHTTP = controller.HTTPOptions{DenyAPIEndpoints: true, Fence: netfence.Config{
	DenyLoopback: true,
	AllowCIDRs:   []string{"127.0.0.0/8", "::1"},
}}

const fetch = `import "vela/op"

get: op.#HTTPGet & {url: parameter.url, request: timeout: "2s"}
parameter: url: string
`

// TestHTTPFence: a run's HTTP step cannot reach the API server the
// controller talks to (its address comes from the manager's rest.Config,
// and loopback being allowed does not open it), nor the address the API
// server advertises in its EndpointSlice, nor the cloud metadata address,
// nor the API server through a redirect from a server it may reach. The
// step fails at once, naming the URL and the rule.
func TestHTTPFence(t *testing.T) {
	ns := namespace(t, "fence")
	sys := namespace(t, "sys-fence")
	startController(t, sys)
	stepDef(t, sys, "fetch", fetch)
	secrets := strings.TrimSuffix(env.Config.Host, "/") + "/api/v1/namespaces/kube-system/secrets"
	apiRule := `denied by rule "api-server ` + env.Config.Host + `"`
	// Where the API server says it is: envtest's advertises a TEST-NET
	// address, which nothing answers, so only the fence makes the step fail
	// at once.
	endpoint := apiEndpoint(t)
	// A server the suite may reach (it allows loopback) that redirects to
	// the API server.
	var hops atomic.Int32
	redirect := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		hops.Add(1)
		nethttp.Redirect(w, r, secrets, nethttp.StatusFound)
	}))
	defer redirect.Close()
	tests := []struct {
		run, url string
		// says are what the step's message must hold.
		says []string
	}{
		{"api-server", secrets, []string{"GET " + secrets + ": destination 127.0.0.1:", apiRule}},
		{"metadata", "http://169.254.169.254/latest/meta-data/", []string{
			`GET http://169.254.169.254/latest/meta-data/: destination 169.254.169.254:80 denied by rule "link-local 169.254.0.0/16"`}},
		{"api-endpoint", "https://" + endpoint + "/api", []string{
			"GET https://" + endpoint + "/api: destination " + endpoint + ` denied by rule "api-server ` + endpoint + `"`}},
		{"redirect", redirect.URL + "/go", []string{
			"GET " + redirect.URL + "/go: redirected to " + secrets + ": destination 127.0.0.1:", apiRule}},
	}
	for _, tt := range tests {
		applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: %s, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: fetch
      type: fetch
      properties: {url: %q}
`, tt.run, ns, tt.url))
	}
	for _, tt := range tests {
		run := waitRun(t, ns, tt.run, 30*time.Second, finishedRun)
		if run.Status.Phase != v1alpha1.WorkflowRunFailed || len(run.Status.Steps) != 1 {
			t.Errorf("run %s: phase %s, steps %+v", tt.run, run.Status.Phase, run.Status.Steps)
			continue
		}
		msg := run.Status.Steps[0].Message
		for _, want := range tt.says {
			if !strings.Contains(msg, want) {
				t.Errorf("run %s: step message %q does not say %q", tt.run, msg, want)
			}
		}
	}
	if n := hops.Load(); n != 1 {
		t.Errorf("the redirecting server got %d requests, want 1: a denied step is not retried", n)
	}
}

// apiEndpoint is the first address of the API server's own EndpointSlice.
func apiEndpoint(t *testing.T) string {
	t.Helper()
	var s discoveryv1.EndpointSlice
	if err := env.Client.Get(context.Background(), controller.APIEndpointSlice, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Endpoints) == 0 || len(s.Endpoints[0].Addresses) == 0 || len(s.Ports) == 0 || s.Ports[0].Port == nil {
		t.Fatalf("EndpointSlice %s has no address: %+v", controller.APIEndpointSlice, s)
	}
	return net.JoinHostPort(s.Endpoints[0].Addresses[0], strconv.Itoa(int(*s.Ports[0].Port)))
}
