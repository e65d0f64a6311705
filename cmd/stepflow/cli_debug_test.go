package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/cli"
	"github.com/stepflow-dev/stepflow/pkg/controller"
)

// runDebugController runs the controller, with ns as its system namespace,
// until the test ends.
func runDebugController(t *testing.T, ns string) {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
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

const debugManifests = `apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: check-port
spec:
  schematic:
    cue:
      template: |
        import (
        	"strconv"
        	"vela/op"
        )
        msg: op.#Message & {message: "checking \(parameter.service)"}
        port: strconv.Atoi(parameter.service)
        parameter: service: string
---
apiVersion: core.oam.dev/v1beta1
kind: WorkflowStepDefinition
metadata:
  name: say
spec:
  schematic:
    cue:
      template: |
        import "vela/op"
        msg: op.#Message & {message: "hello"}
---
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: fails
spec:
  workflowSpec:
    steps:
    - name: hello
      type: say
    - name: check
      type: check-port
      properties: {service: web}
`

// debug after the fact: a run that was never annotated for debugging keeps
// the value of the step that failed, and `debug` prints it and says why it
// was kept; a step that succeeded kept none, and the hint to annotate the
// run stays.
func TestCLIDebugFailedStep(t *testing.T) {
	c := newCluster(t)
	c.ok("run", "-f", writeFile(t, "fails.yaml", debugManifests))
	runDebugController(t, c.ns)
	deadline := time.Now().Add(time.Minute)
	run := c.get("fails")
	for !run.Status.Finished {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not finish in a minute: %+v", run.Status)
		}
		time.Sleep(100 * time.Millisecond)
		run = c.get("fails")
	}
	if run.Status.Phase != v1alpha1.WorkflowRunFailed || len(run.Status.Steps) != 2 {
		t.Fatalf("run %s: %+v", run.Status.Phase, run.Status.Steps)
	}
	id := run.Status.Steps[1].ID

	code, out, errs := c.run("debug", "fails", "--step", "check")
	if code != 0 {
		t.Fatalf("debug --step check: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var value map[string]any
	if err := json.Unmarshal([]byte(out), &value); err != nil {
		t.Fatalf("stdout is not the value as JSON: %v\n%s", err, out)
	}
	if msg, _ := value["msg"].(map[string]any); msg["message"] != "checking web" || value["port"] != nil {
		t.Errorf("value %v: want msg as evaluated and no port", value)
	}
	for _, want := range []string{
		fmt.Sprintf(`^note: attempt %s of step "check" failed \(TemplateError\) at \S+; its last evaluated value is kept because it failed \(workflowrun %s/fails is not annotated workflowrun\.oam\.dev/debug: "true"\)$`,
			regexp.QuoteMeta(id), c.ns),
		`^error: step "check" \(definition "check-port"\): port: error in call to strconv\.Atoi: strconv\.Atoi: parsing "web": invalid syntax \(check-port\.cue:6:7\)$`,
	} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(errs) {
			t.Errorf("stderr has no line matching %s:\n%s", want, errs)
		}
	}

	var dv cli.DebugValue
	if err := json.Unmarshal([]byte(c.ok("debug", "fails", "--step", "check", "-o", "json")), &dv); err != nil {
		t.Fatal(err)
	}
	if dv.Step != "check" || dv.ID != id || dv.Failure == nil || dv.Failure.Reason != "TemplateError" || dv.Failure.Definition != "check-port" || dv.Failure.Retry {
		t.Errorf("debug -o json: %+v failure %+v", dv, dv.Failure)
	}

	errs = c.fails(`keeps no debug value of step "hello": annotate it with workflowrun.oam.dev/debug: "true"`, "debug", "fails", "--step", "hello")
	if !strings.Contains(errs, "a step keeps its value only when it fails") {
		t.Errorf("the hint does not say that failed steps keep theirs: %s", errs)
	}
}
