package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
)

// testHTTP is the suite's HTTP fence: a cluster install's, with loopback
// allowed explicitly for the tests' httptest servers.
var testHTTP = controller.HTTPOptions{Fence: netfence.Config{
	DenyLoopback: true,
	AllowCIDRs:   []string{"127.0.0.0/8", "::1"},
}}

const fetch = `import "vela/op"

get: op.#HTTPGet & {url: parameter.url}
parameter: url: string
`

// TestHTTPFence: a run's HTTP step cannot reach the API server the
// controller talks to (its address comes from the manager's rest.Config,
// and loopback being allowed does not open it) nor the cloud metadata
// address. The step fails at once, naming the rule.
func TestHTTPFence(t *testing.T) {
	ns := namespace(t, "fence")
	sys := namespace(t, "sys-fence")
	startController(t, sys)
	stepDef(t, sys, "fetch", fetch)
	tests := []struct {
		run, url, rule string
	}{
		{"api-server", env.Config.Host + "/api/v1/namespaces/kube-system/secrets", `denied by rule "api-server ` + env.Config.Host + `"`},
		{"metadata", "http://169.254.169.254/latest/meta-data/", `denied by rule "link-local 169.254.0.0/16"`},
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
		if !strings.Contains(msg, "GET "+tt.url+": destination") || !strings.Contains(msg, tt.rule) {
			t.Errorf("run %s: step message %q does not name the URL and %s", tt.run, msg, tt.rule)
		}
	}
}
