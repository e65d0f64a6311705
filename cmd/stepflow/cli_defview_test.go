package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// def list and def get see the definitions a run of the namespace uses, as
// the controller looks them up: the namespace's own, then the system
// namespace's; def get -o cue writes a vela def file def apply takes back.
func TestCLIDefsAsTheControllerSeesThem(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	sysNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sys-"}}
	if err := env.Client.Create(ctx, sysNS); err != nil {
		t.Fatal(err)
	}
	sys := sysNS.Name
	shared := func(desc string) string {
		return writeFile(t, "shared.yaml", `apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: shared
  annotations:
    definition.oam.dev/description: `+desc+`
spec:
  schematic:
    cue:
      template: |
        x: 1
`)
	}
	c.ok("def", "apply", "-n", sys, "-f", writeFile(t, "say.cue", sayCUE), "-f", shared("System's"))
	c.ok("def", "apply", "-f", shared("Mine"))

	want := []string{
		"NAME | DESCRIPTION | READY | FROM",
		"say | Say hello | Unknown | " + sys,
		"shared | Mine | Unknown | " + c.ns,
	}
	if diff := cmp.Diff(want, columns(c.ok("def", "list", "--system-namespace", sys))); diff != "" {
		t.Errorf("def list --system-namespace (-want +got):\n%s", diff)
	}
	var list v1beta1.WorkflowStepDefinitionList
	if err := json.Unmarshal([]byte(c.ok("def", "list", "--system-namespace", sys, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range list.Items {
		got = append(got, d.Namespace+"/"+d.Name)
	}
	if diff := cmp.Diff([]string{sys + "/say", c.ns + "/shared"}, got); diff != "" {
		t.Errorf("def list -o json: the table's definitions, by name (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"NAME | DESCRIPTION | READY | FROM", "shared | Mine | Unknown | " + c.ns},
		columns(c.ok("def", "list"))); diff != "" {
		t.Errorf("def list with the default system namespace (-want +got):\n%s", diff)
	}

	// def get finds the system's definition, and -o cue round-trips it.
	var sysSay v1beta1.WorkflowStepDefinition
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: sys, Name: "say"}, &sysSay); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("def", "get", "say", "--system-namespace", sys); out != sysSay.Spec.Schematic.CUE.Template {
		t.Errorf("def get say printed %q, want the system namespace's template %q", out, sysSay.Spec.Schematic.CUE.Template)
	}
	file := c.ok("def", "get", "say", "--system-namespace", sys, "-o", "cue")
	wantFile := `import "vela/op"

"say": {
	type: "workflow-step"
	annotations: {}
	labels: {}
	description: "Say hello"
}
template: {
	msg: op.#Message & {message: parameter.who}
	parameter: who: string
}
`
	if diff := cmp.Diff(wantFile, file); diff != "" {
		t.Errorf("def get -o cue (-want +got):\n%s", diff)
	}
	if out := c.ok("def", "apply", "-f", writeFile(t, "say.cue", file)); out != "workflowstepdefinition.core.oam.dev/say created\n" {
		t.Errorf("def apply of def get's file printed %q", out)
	}
	var mine v1beta1.WorkflowStepDefinition
	if err := env.Client.Get(ctx, c.key("say"), &mine); err != nil {
		t.Fatal(err)
	}
	if mine.Spec.Schematic.CUE.Template != sysSay.Spec.Schematic.CUE.Template ||
		mine.Annotations["definition.oam.dev/description"] != "Say hello" {
		t.Errorf("applied back: template %q, annotations %v; want the system's %q and its description",
			mine.Spec.Schematic.CUE.Template, mine.Annotations, sysSay.Spec.Schematic.CUE.Template)
	}
	if out := c.ok("def", "get", "say", "-o", "cue"); out != file {
		t.Errorf("def get -o cue of the applied file:\n%s\nwant\n%s", out, file)
	}
	c.fails("workflowstepdefinition "+c.ns+"/nope not found, nor "+sys+"/nope", "def", "get", "nope", "--system-namespace", sys)
}
