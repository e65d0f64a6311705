package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/defschema"
)

// postLevel posts to parameter.url; its parameter has a description, an
// enum with a default and a closed struct.
const postLevel = `import "vela/op"

post: op.#HTTPPost & {
	url: parameter.url
	request: body: parameter.level
}
parameter: {
	// +usage=Where to post
	url:   string
	level: *"info" | "warn"
	retry: close({times: *1 | int})
}
`

// waitDefinition waits until the controller has reconciled generation gen
// of the step definition and ok says its status is what the test waits for.
func waitDefinition(t *testing.T, ns, name string, ok func(*v1beta1.WorkflowStepDefinition) bool) *v1beta1.WorkflowStepDefinition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var def v1beta1.WorkflowStepDefinition
	for {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &def); err != nil {
			t.Fatal(err)
		}
		if def.Status.ObservedGeneration == def.Generation && meta.FindStatusCondition(def.Status.Conditions, v1beta1.ConditionReady) != nil && ok(&def) {
			return &def
		}
		if time.Now().After(deadline) {
			t.Fatalf("definition %s/%s: status not as wanted within 30s: %+v", ns, name, def.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A step definition whose template compiles carries its parameter's JSON
// Schema on its status; one too large for the status has a condition
// saying so instead; a template that no longer compiles loses its schema.
func TestDefinitionStatusHasParameterSchema(t *testing.T) {
	sys := namespace(t, "sys-schema")
	startController(t, sys)
	stepDef(t, sys, "post-level", postLevel)
	def := waitDefinition(t, sys, "post-level", func(d *v1beta1.WorkflowStepDefinition) bool { return d.Status.ParameterSchema != nil })
	var s defschema.Schema
	if err := json.Unmarshal(def.Status.ParameterSchema.Raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.SchemaURI != defschema.Draft || strings.Join(s.Required, ",") != "url" || s.Properties["url"].Description != "Where to post" ||
		string(s.Properties["level"].Default) != `"info"` || !s.Properties["retry"].Closed() {
		t.Errorf("parameterSchema = %s", def.Status.ParameterSchema.Raw)
	}
	if c := meta.FindStatusCondition(def.Status.Conditions, v1beta1.ConditionParameterSchema); c != nil {
		t.Errorf("a definition with its schema has condition %+v", c)
	}

	// Too large: 1500 fields, each with a description.
	var big strings.Builder
	big.WriteString("parameter: {\n")
	for i := 0; i < 1500; i++ {
		fmt.Fprintf(&big, "\t// +usage=Field number %d of a parameter much too large to keep on a status\n\tf%d?: string\n", i, i)
	}
	big.WriteString("}\n")
	stepDef(t, sys, "too-large", big.String())
	large := waitDefinition(t, sys, "too-large", func(d *v1beta1.WorkflowStepDefinition) bool {
		return meta.FindStatusCondition(d.Status.Conditions, v1beta1.ConditionParameterSchema) != nil
	})
	c := meta.FindStatusCondition(large.Status.Conditions, v1beta1.ConditionParameterSchema)
	if c.Status != metav1.ConditionFalse || c.Reason != "TooLarge" || large.Status.ParameterSchema != nil ||
		!meta.IsStatusConditionTrue(large.Status.Conditions, v1beta1.ConditionReady) {
		t.Errorf("too large: condition %+v, schema kept: %v, conditions %+v", c, large.Status.ParameterSchema != nil, large.Status.Conditions)
	}

	// Broken: the schema of the earlier generation goes.
	def.Spec.Schematic.CUE.Template = "parameter: {url: string\n"
	if err := env.Client.Update(context.Background(), def); err != nil {
		t.Fatal(err)
	}
	broken := waitDefinition(t, sys, "post-level", func(d *v1beta1.WorkflowStepDefinition) bool {
		return !meta.IsStatusConditionTrue(d.Status.Conditions, v1beta1.ConditionReady)
	})
	if broken.Status.ParameterSchema != nil {
		t.Errorf("a template that does not compile keeps the schema of its earlier generation: %s", broken.Status.ParameterSchema.Raw)
	}
}

// A run whose properties do not fit its steps' definitions fails at its
// first tick with every problem listed, and no step runs: the server the
// steps post to gets no request, not even from the first step, whose
// properties are good. A property an input fills from an
// earlier step's output is no problem.
func TestRunPropertiesAreCheckedAtFirstTick(t *testing.T) {
	ns := namespace(t, "props")
	sys := namespace(t, "sys-props")
	startController(t, sys)
	var hits atomic.Int32
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	stepDef(t, sys, "post-level", postLevel)
	waitDefinition(t, sys, "post-level", func(*v1beta1.WorkflowStepDefinition) bool { return true })

	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: bad, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: first
      type: post-level
      properties: {url: %q}
    - name: second
      type: post-level
      properties: {url: %q, level: debug}
    - name: third
      type: post-level
      properties: {url: 8080, retry: {times: 2, limit: 3}}
`, ns, srv.URL, srv.URL))
	run := waitRun(t, ns, "bad", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunFailed {
		t.Fatalf("phase %s, want failed: %s", run.Status.Phase, run.Status.Message)
	}
	for _, want := range []string{
		`step "second" (definition "post-level"): properties.level: got "debug", want *"info" | "warn"`,
		`step "third" (definition "post-level"): properties.retry.limit: field not allowed`,
		`step "third" (definition "post-level"): properties.url: got 8080, want string`,
	} {
		if !strings.Contains(run.Status.Message, want) {
			t.Errorf("message %q does not say %q", run.Status.Message, want)
		}
	}
	if len(run.Status.Steps) != 0 {
		t.Errorf("steps began: %+v", run.Status.Steps)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests went out, want none", n)
	}

	applyYAML(t, &v1alpha1.WorkflowRun{}, fmt.Sprintf(`
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata: {name: later, namespace: %s}
spec:
  workflowSpec:
    steps:
    - name: first
      type: post-level
      properties: {url: %q}
      outputs: [{name: target, valueFrom: parameter.url}]
    - name: second
      type: post-level
      inputs: [{from: target, parameterKey: url}]
      properties: {level: warn}
`, ns, srv.URL))
	run = waitRun(t, ns, "later", 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Fatalf("a run whose url comes from an input: phase %s: %s", run.Status.Phase, run.Status.Message)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("%d requests went out, want 2", n)
	}
}
