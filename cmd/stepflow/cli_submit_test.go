package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// startTestController runs the controller as the binary wires it, with ns
// as its system namespace, until the test ends. It acts on the runs of
// every namespace (the callbacks need an informer of all of them), so the
// runs earlier tests left behind get reconciled too.
func startTestController(t *testing.T, ns string) {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{SystemNamespace: ns, SingleTenant: true, Metrics: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

const submitManifests = `apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: show-context
spec:
  schematic:
    cue:
      template: |
        import "vela/op"
        msg: op.#Message & {message: "replicas+1=\(context.replicas + 1) env=\(context.env.name) tag=\(context.tag)"}
---
apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata:
  name: greet
steps:
- name: show
  type: show-context
`

// submit --from workflow/NAME creates a run of the Workflow with the -p
// parameters in its context, and the controller runs it with them: a step
// reads context.replicas as a number and context.env.name from a dotted key.
func TestCLISubmit(t *testing.T) {
	c := newCluster(t)
	c.ok("run", "-f", writeFile(t, "greet.yaml", submitManifests))
	startTestController(t, c.ns)

	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := c.run("submit", "--from", "workflow/greet", "--name", "first",
			"-p", "replicas=3", "-p", "env.name=prod", "-p", "tag='007'", "--watch")
		done <- result{code, out, errs}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("submit --watch did not return in 2 minutes; the run: %+v", c.get("first").Status)
	}
	if r.code != 0 {
		t.Fatalf("submit --watch: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.errs)
	}
	for _, l := range []string{`workflowrun.core.oam.dev/first created`, `(\S+  )?show +succeeded`, `workflowrun \S+/first succeeded`} {
		if !regexp.MustCompile(`(?m)^` + l + `$`).MatchString(r.out) {
			t.Errorf("no line matching %q in\n%s", l, r.out)
		}
	}
	run := c.get("first")
	if run.Spec.WorkflowRef != "greet" {
		t.Errorf("workflowRef %q, want greet", run.Spec.WorkflowRef)
	}
	var ctxVars map[string]any
	if err := json.Unmarshal(run.Spec.Context.Raw, &ctxVars); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"replicas": 3.0, "env": map[string]any{"name": "prod"}, "tag": "007"}
	if diff := cmp.Diff(want, ctxVars); diff != "" {
		t.Errorf("spec.context (-want +got):\n%s", diff)
	}
	if len(run.Status.Steps) != 1 || run.Status.Steps[0].Message != "replicas+1=4 env=prod tag=007" {
		t.Errorf("steps %+v; want step show with the message its template makes of the context", run.Status.Steps)
	}

	// Generated names, and -o.
	out := c.ok("submit", "--from", "workflow/greet", "-o", "name", "-p", "replicas=1", "-p", "env.name=a", "-p", "tag=b")
	if !regexp.MustCompile(`^workflowrun\.core\.oam\.dev/greet-[a-z0-9]{5}\n$`).MatchString(out) {
		t.Errorf("-o name: %q; want workflowrun.core.oam.dev/greet-XXXXX", out)
	}
	out = c.ok("submit", "--from", "wfl/greet", "--generate-name", "nightly-", "-o", "json")
	var printed v1alpha1.WorkflowRun
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if printed.Kind != "WorkflowRun" || !strings.HasPrefix(printed.Name, "nightly-") || printed.Spec.WorkflowRef != "greet" || printed.Spec.Context != nil {
		t.Errorf("-o json printed kind %q, name %q, workflowRef %q, context %v", printed.Kind, printed.Name, printed.Spec.WorkflowRef, printed.Spec.Context)
	}
}

// What submit refuses, before creating anything.
func TestCLISubmitRefuses(t *testing.T) {
	c := newCluster(t)
	c.ok("run", "-f", writeFile(t, "greet.yaml", submitManifests))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "workflow/nope"}, "--from workflow/nope: workflow " + c.ns + "/nope not found"},
		{[]string{"--from", "workflowtemplate/greet"}, `--from workflowtemplate/greet: kind "workflowtemplate" is not supported: submit starts runs of a Workflow only (--from workflow/NAME)`},
		{[]string{"--from", "greet"}, `--from "greet": want workflow/NAME`},
		{[]string{"--from", "workflow/greet", "-p", "replicas"}, `-p "replicas": want KEY=VALUE`},
		{[]string{"--from", "workflow/greet", "-p", "=3"}, `-p "=3": want KEY=VALUE`},
		{[]string{"--from", "workflow/greet", "-p", "a..b=1"}, `-p a..b: empty part in the dotted key`},
		{[]string{"--from", "workflow/greet", "-p", "a=1", "-p", "a=2"}, `-p a: a is set twice`},
		{[]string{"--from", "workflow/greet", "-p", "a=1", "-p", "a.b=2"}, `-p a.b: a is set to a value already, so it cannot hold b`},
		{[]string{"--from", "workflow/greet", "-p", "a.b=1", "-p", "a=2"}, `-p a: a is set twice`},
		{[]string{"--from", "workflow/greet", "-p", "a=[1"}, `-p a: value "[1" is not YAML`},
		{[]string{"--from", "workflow/greet", "--name", "x", "--generate-name", "y-"}, `if any flags in the group [name generate-name] are set none of the others can be`},
		{[]string{"--from", "workflow/greet", "--watch", "-o", "yaml"}, `--watch prints the run's steps as they change: it cannot be combined with -o yaml`},
		{[]string{"--from", "workflow/greet", "-o", "wide"}, `unknown output format "wide": want name or yaml or json`},
		{[]string{"-p", "a=1"}, `required flag(s) "from" not set`},
	} {
		c.fails(tc.want, append([]string{"submit"}, tc.args...)...)
	}
	var runs v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &runs, client.InNamespace(c.ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 0 {
		t.Errorf("%d runs created by refused submits", len(runs.Items))
	}
}
