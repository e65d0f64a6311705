package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/stepflow-dev/stepflow/internal/testenv"
)

// The data-testid attributes the app gives the elements the specs use
// (docs/ui.md lists them).
const (
	runRow    = `[data-testid="run-row"]`
	stepNode  = `[data-testid="step-node"]`
	stepPanel = `[data-testid="step-panel"]`
	logLine   = `[data-testid="log-line"]`
	stepMsg   = `[data-testid="step-message"]`
	confirm   = `[data-testid="confirm"]`
	launchBtn = `[data-testid="launch"]`
)

// operator is the user each spec signs in as: a ServiceAccount of the
// spec's namespace allowed what the UI does there.
const operator = "operator"

// tenant creates namespace ns, lets its operator read, launch and act on
// runs there, and returns the operator's bearer token once the API server
// allows it.
func tenant(ctx context.Context, ns string) string {
	GinkgoHelper()
	Expect(fw.CreateNamespace(ctx, ns)).To(Succeed())
	tok, err := fw.APIUser(ctx, ns, operator, "get", "list", "watch", "create", "update")
	Expect(err).NotTo(HaveOccurred())
	for _, verb := range []string{"list", "update"} {
		testenv.WaitAllowed(GinkgoTB(), fw.Client, "system:serviceaccount:"+ns+":"+operator,
			authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: "core.oam.dev", Resource: "workflowruns"})
	}
	return tok
}

// uiGet reads path of the UI's API as the user of token, into v.
func uiGet(token, path string, v any) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK), "GET %s: %s", path, body)
	Expect(json.Unmarshal(body, v)).To(Succeed(), "GET %s: %s", path, body)
}

// runFile applies manifest (runs, workflows) in namespace ns with
// `stepflow run -f`, as a user does.
func runFile(ns, file, manifest string) {
	GinkgoHelper()
	Expect(fw.ApplyFile(ns, file, manifest, "run")).To(Succeed())
}

// applyDefinition installs a step definition (CUE) in namespace ns with
// `stepflow def apply -f`.
func applyDefinition(ns, file, cue string) {
	GinkgoHelper()
	Expect(fw.ApplyFile(ns, file, cue, "def", "apply")).To(Succeed())
}

// messageRun is a run of one step that shows a message and succeeds.
func messageRun(name string) string {
	return fmt.Sprintf(`apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: %s
spec:
  workflowSpec:
    steps:
    - name: say
      type: print-message-in-status
      properties: {message: "hello from %s"}
`, name, name)
}

// The JavaScript expressions the specs wait on.

// row is the run list's row of run name.
func row(name string) string {
	return fmt.Sprintf(`document.querySelector(%s)`, jsString(fmt.Sprintf(`%s[data-name=%q]`, runRow, name)))
}

// rowPhase is the phase the row of run name shows, as text.
func rowPhase(name string) string {
	return fmt.Sprintf(`(%s?.querySelector(".phase")?.textContent ?? "").trim()`, row(name))
}

// node is the graph's node of step (or group) name.
func node(name string) string {
	return fmt.Sprintf(`document.querySelector(%s)`, jsString(fmt.Sprintf(`%s[data-step=%q]`, stepNode, name)))
}

// nodePhase is the phase the graph's node of step name has.
func nodePhase(name string) string {
	return fmt.Sprintf(`(%s?.getAttribute("data-phase") ?? "")`, node(name))
}

// runPhase is the phase the run view shows beside the run's name.
const runPhase = `(document.querySelector("#run-h")?.parentElement?.querySelector(".phase")?.textContent ?? "").trim()`

// isLive says the page's event stream is open: its status says "live".
const isLive = `[...document.querySelectorAll('[role="status"]')].some((e) => e.textContent.trim() === "live")`
