package controller_test

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// A step whose template calls #Terminate ends the run terminated, with
// the template's message in the status and the Failed condition; the
// step after it never runs, and the POST before the terminate went once.
func TestTemplateTerminatesTheRun(t *testing.T) {
	ns := namespace(t, "terminate")
	sys := namespace(t, "sys-terminate")
	startController(t, sys)
	var posts atomic.Int32
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		posts.Add(1)
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	stepDef(t, sys, "apply-object", applyObject)
	stepDef(t, sys, "stop-rollout", `import "vela/op"

notify: op.#HTTPPost & {url: parameter.url}
end: op.#Terminate & {message: "rollout stopped"}
parameter: url: string
`)
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: stopped, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: canary
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: canary}}
    - name: gate
      type: stop-rollout
      properties: {url: %q}
    - name: promote
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: promoted}}
`, ns, srv.URL))
	run := waitRun(t, ns, "stopped", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunTerminated || run.Status.Message != "rollout stopped" {
		t.Fatalf("run %s %q, want terminated \"rollout stopped\"", run.Status.Phase, run.Status.Message)
	}
	if c := meta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionFailed); c == nil || c.Status != "True" || c.Message != "rollout stopped" {
		t.Errorf("Failed condition = %+v, want True with \"rollout stopped\"", c)
	}
	phases := map[string]string{}
	for _, s := range run.Status.Steps {
		phases[s.Name] = string(s.Phase) + "/" + s.Reason
	}
	if phases["canary"] != "succeeded/" || phases["gate"] != "failed/"+engine.ReasonTerminate {
		t.Errorf("steps = %v, want canary succeeded and gate failed/Terminate", phases)
	}
	if p, ok := phases["promote"]; ok {
		t.Errorf("promote has status %s; it must never run", p)
	}
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "promoted"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap promoted: %v, want not found", err)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("POST hits = %d, want 1", n)
	}
}
