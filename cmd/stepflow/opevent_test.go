package main

import (
	"context"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// An operation made with the CLI leaves an Event on the run saying what
// was done and by whom, as the REST API's do; a refused one leaves none.
func TestCLIOperationsLeaveEvents(t *testing.T) {
	c := newCluster(t)
	c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("a", "say", v1alpha1.WorkflowStepPhaseRunning, "a-1"),
	}}, "a:say")
	c.ok("suspend", "r")
	c.ok("resume", "r")
	c.ok("terminate", "r")
	c.fails("the run is finished", "resume", "r")
	var events corev1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(c.ns)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "WorkflowRun" && e.InvolvedObject.Name == "r" && e.Reason == "Operated" {
			if e.Source.Component != "stepflow-cli" || e.Type != corev1.EventTypeNormal {
				t.Errorf("event %s: source %q type %q", e.Name, e.Source.Component, e.Type)
			}
			got = append(got, e.Message)
		}
	}
	sort.Strings(got)
	want := []string{"resume by ", "suspend by ", "terminate by "}
	if len(got) != len(want) {
		t.Fatalf("Operated events: %q, want one per operation done: %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.HasSuffix(got[i], "through the stepflow CLI") || strings.Contains(got[i], "unknown user") {
			t.Errorf("event %d: %q, want %q<user> through the stepflow CLI", i, got[i], want[i])
		}
	}
}
