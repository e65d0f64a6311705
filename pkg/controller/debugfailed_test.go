package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// Templates of steps that fail in different ways.
const (
	// badRef refers to a field that does not exist: it does not compile.
	badRef = `greeting: "hi"
out: greting
`
	// conflict keeps kept, and fails on a conflict with the context.
	conflict = `kept: parameter.who
port: int & context.name
parameter: who: string
`
	// readSecret reads a Secret, then fails naming it.
	readSecret = `import (
	"vela/kube"
	"vela/op"
)

read: kube.#Read & {$params: value: {apiVersion: "v1", kind: "Secret", metadata: {name: parameter.name, namespace: context.namespace}}}
fail: op.#Fail & {message: "read " + read.$returns.value.metadata.name}
parameter: name: string
`
	// bigThenFail has a value over the debug bound, then fails.
	bigThenFail = `import (
	"strings"
	"vela/op"
)

blob: strings.Repeat("x", 40000)
fail: op.#Fail & {message: "too big"}
`
	// succeed says hello.
	succeed = `import "vela/op"

msg: op.#Message & {message: "hello"}
`
)

// A run that is not annotated for debugging keeps the last evaluated value
// of each step that failed (a template that does not compile, a conflict,
// an op that fails, a value over the bound) in its debug ConfigMap, with
// the error and its CUE positions, Secrets' data redacted; a step that
// succeeds keeps nothing.
func TestDebugKeepsFailedSteps(t *testing.T) {
	ns := namespace(t, "debug-failed")
	sys := namespace(t, "sys-debug-failed")
	startController(t, sys)
	for name, tpl := range map[string]string{"bad-ref": badRef, "conflict": conflict, "read-secret": readSecret,
		"big-then-fail": bigThenFail, "succeed": succeed} {
		stepDef(t, sys, name, tpl)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: ns},
		Data: map[string][]byte{"token": []byte("s3cr3t-value")}}
	if err := env.Client.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: fails, namespace: %s}
spec:
  mode: {steps: DAG}
  workflowSpec:
    steps:
    - {name: bad, type: bad-ref}
    - {name: conflict, type: conflict, properties: {who: world}}
    - {name: secret, type: read-secret, properties: {name: token}}
    - {name: big, type: big-then-fail}
    - {name: ok, type: succeed}
`, ns))
	run := waitRun(t, ns, "fails", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("phase %s: %s", run.Status.Phase, run.Status.Message)
	}
	ids := map[string]string{}
	for _, s := range run.Status.Steps {
		ids[s.Name] = s.ID
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: controller.DebugConfigMapName("fails")}, &cm); err != nil {
		t.Fatal(err)
	}
	if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != run.UID {
		t.Errorf("owner references %+v", cm.OwnerReferences)
	}
	if _, ok := cm.Data["ok"]; ok {
		t.Errorf("a step that succeeded kept a value: %s", cm.Data["ok"])
	}
	if strings.Contains(fmt.Sprint(cm.Data), "s3cr3t") || strings.Contains(fmt.Sprint(cm.Data), "czNjcjN0") {
		t.Errorf("the Secret's data is in the debug ConfigMap: %v", cm.Data)
	}
	rec := func(step string) controller.DebugRecord {
		t.Helper()
		var r controller.DebugRecord
		if err := json.Unmarshal([]byte(cm.Data[step]), &r); err != nil {
			t.Fatalf("step %s: %v: %q", step, err, cm.Data[step])
		}
		if r.ID != ids[step] || r.Failure == nil || r.At == "" {
			t.Errorf("step %s (id %s): record %s", step, ids[step], cm.Data[step])
		}
		return r
	}

	if r := rec("bad"); r.Value != nil || r.Failure.Reason != "TemplateError" ||
		!strings.Contains(r.Failure.Message, "greting") || !strings.Contains(r.Failure.Message, ":2:") || r.Failure.Definition != "bad-ref" {
		t.Errorf("bad reference: %s", cm.Data["bad"])
	}
	if r := rec("conflict"); r.Failure.Reason != "TemplateError" || !strings.Contains(r.Failure.Message, "port") {
		t.Errorf("conflict: %s", cm.Data["conflict"])
	} else if v, _ := r.Value.(map[string]any); v["kept"] != "world" || v["port"] != nil {
		t.Errorf("conflict: the value as far as it went is not kept: %s", cm.Data["conflict"])
	}
	r := rec("secret")
	if r.Failure.Reason != "Fail" || r.Failure.Message != "read token" {
		t.Errorf("failed op: %s", cm.Data["secret"])
	}
	v, _ := r.Value.(map[string]any)
	read, _ := v["read"].(map[string]any)
	returns, _ := read["$returns"].(map[string]any)
	obj, _ := returns["value"].(map[string]any)
	if data, _ := obj["data"].(map[string]any); data["token"] != controller.RedactedSecretData {
		t.Errorf("the Secret read is not redacted: %v", obj)
	}
	if r := rec("big"); r.Value != nil || len(r.ValueJSON) != controller.MaxDebugValueBytes || r.Cut <= 40000-controller.MaxDebugValueBytes ||
		!strings.HasPrefix(r.ValueJSON, `{"blob":"xxx`) {
		t.Errorf("big: valueJSON of %d bytes, cut %d, value %v", len(r.ValueJSON), r.Cut, r.Value != nil)
	}
	if n := len(cm.Data); n != 4 {
		t.Errorf("%d records, want 4: %v", n, cm.Data)
	}
}
