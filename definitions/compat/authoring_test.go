package compat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// greetTypo refers to parameter.nme where the parameter declares name.
const greetTypo = `import "vela/op"

msg: op.#Log & {data: "hello \(parameter.nme)"}
parameter: name: string
`

// A definition whose template refers to a parameter field it does not
// declare is not Ready, and the condition names the position; a run of it
// fails at once with the same position instead of waiting for a value no
// property can give.
func TestUndefinedParameterReference(t *testing.T) {
	ns := newNamespace(t, "compat-typo")
	ctx := context.Background()
	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greet"}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: greetTypo}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got v1beta1.WorkflowStepDefinition
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "greet"}, &got); err != nil {
			t.Fatal(err)
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		if c != nil && c.Status == metav1.ConditionFalse {
			if !strings.Contains(c.Message, "reference to parameter.nme") || !strings.Contains(c.Message, "greet.cue:3:") {
				t.Errorf("Ready condition message %q does not name the reference and its position", c.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the definition did not become Ready=False within 30s: %+v", got.Status.Conditions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	name := runYAML(t, ns, `
metadata: {name: typo}
spec:
  workflowSpec:
    steps:
    - {name: hello, type: greet, properties: {name: world}}
`)
	run := waitRun(t, ns, name, 30*time.Second, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Finished })
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("run phase %s, want failed", run.Status.Phase)
	}
	if s := stepOf(t, run, "hello"); s.Phase != v1alpha1.WorkflowStepPhaseFailed || !strings.Contains(s.Message, "parameter.nme") ||
		!strings.Contains(s.Message, "greet.cue:3:") {
		t.Errorf("step %s: %s", s.Phase, s.Message)
	}
}
