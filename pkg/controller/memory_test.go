package controller_test

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// postApplyWait sends a POST (an effect: the run gets a journal, which the
// controller keeps a copy of), applies a ConfigMap (the waker watches it
// for the run) and then waits for parameter.go, which never comes.
const postApplyWait = `import (
	"vela/op"
	"vela/kube"
	"vela/builtin"
)

post: op.#HTTPPost & {url: parameter.url}
apply: kube.#Apply & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "seen-by-\(context.name)"}}
wait: builtin.#ConditionalWait & {$params: continue: parameter.go}
parameter: {url: string, go: bool}
`

func postApplyWaitRun(t *testing.T, ns, name, url string, proceed bool) {
	t.Helper()
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
metadata: {name: %s, namespace: %s}
spec:
  workflowSpec:
    steps:
    - {name: s, type: post-apply-wait, properties: {url: %q, go: %t}}
`, name, ns, url, proceed))
}

func waitHeld(t *testing.T, c *controller.Controller, want func(journals, own, waking int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: make test runs many packages on two cores
	for {
		j, o, w := c.Held()
		if want(j, o, w) {
			return
		}
		if time.Now().After(deadline) {
			var runs v1alpha1.WorkflowRunList
			_ = env.Client.List(context.Background(), &runs)
			var states []string
			for _, r := range runs.Items {
				if !strings.HasPrefix(r.Namespace, "memory") {
					continue
				}
				st := fmt.Sprintf("%s: %s", r.Name, r.Status.Phase)
				for _, s := range r.Status.Steps {
					st += fmt.Sprintf(" [%s %s %s: %s]", s.Name, s.Phase, s.Reason, s.Message)
				}
				states = append(states, st)
			}
			t.Fatalf("%s: the controller still holds %d journal copies, %d own-write entries, %d runs in the waker; runs:\n%s",
				what, j, o, w, strings.Join(states, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Runs deleted mid-flight, and runs that finish, leave nothing behind in
// the controller's memory: no journal copy, no own-write entry, no waker
// entry.
func TestRunsLeaveNoMemoryBehind(t *testing.T) {
	ns := namespace(t, "memory")
	c := startController(t, ns)
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	stepDef(t, ns, "post-apply-wait", postApplyWait)

	const n = 8
	for i := 0; i < n; i++ {
		postApplyWaitRun(t, ns, fmt.Sprintf("deleted-%d", i), srv.URL, false)
	}
	waitHeld(t, c, func(j, o, w int) bool { return j == n && o == n && w == n }, "all runs waiting")
	for i := 0; i < n; i++ {
		run := &v1alpha1.WorkflowRun{}
		run.Namespace, run.Name = ns, fmt.Sprintf("deleted-%d", i)
		if err := env.Client.Delete(context.Background(), run); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, c, func(j, o, w int) bool { return j == 0 && o == 0 && w == 0 }, "after the runs were deleted mid-flight")

	for i := 0; i < n; i++ {
		postApplyWaitRun(t, ns, fmt.Sprintf("finished-%d", i), srv.URL, true)
	}
	for i := 0; i < n; i++ {
		run := waitRun(t, ns, fmt.Sprintf("finished-%d", i), time.Minute, finishedRun) // generous, as waitHeld
		if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
			t.Fatalf("run %s: phase %s: %s", run.Name, run.Status.Phase, run.Status.Message)
		}
	}
	waitHeld(t, c, func(j, o, w int) bool { return j == 0 && o == 0 && w == 0 }, "after the runs finished")
	if err := env.Client.DeleteAllOf(context.Background(), &v1alpha1.WorkflowRun{}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
}
