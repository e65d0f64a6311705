package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// columns splits a table printed by the CLI into its cells, joined by " | "
// (tabwriter pads cells with at least three spaces).
func columns(out string) []string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range lines {
		lines[i] = regexp.MustCompile(` {3,}`).ReplaceAllString(strings.TrimRight(l, " "), " | ")
	}
	return lines
}

// treeRun is a finished run of a step, a group of two sub-steps (one
// depending on the other) and a step depending on both, with start times,
// durations and an output.
func treeRun(t *testing.T, c *cluster) *v1alpha1.WorkflowRun {
	t.Helper()
	base := func(name, typ string, deps ...string) v1alpha1.WorkflowStepBase {
		return v1alpha1.WorkflowStepBase{Name: name, Type: typ, DependsOn: deps}
	}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "tree", Namespace: c.ns},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: base("prepare", "say")},
			{WorkflowStepBase: base("group", "step-group"), SubSteps: []v1alpha1.WorkflowStepBase{base("a", "say"), base("b", "say", "a")}},
			{WorkflowStepBase: base("deploy", "say", "prepare", "group")},
		}}}}
	ctx := context.Background()
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(s) * time.Second)) }
	timed := func(name, typ string, phase v1alpha1.WorkflowStepPhase, from, to int) v1alpha1.StepStatus {
		return v1alpha1.StepStatus{ID: name + "-1", Name: name, Type: typ, Phase: phase, Attempt: 1,
			FirstExecuteTime: at(from), LastExecuteTime: at(to)}
	}
	prepare := timed("prepare", "say", v1alpha1.WorkflowStepPhaseSucceeded, 0, 3)
	prepare.Outputs = []v1alpha1.StepOutputValue{{Name: "url", Value: &apiextensionsv1.JSON{Raw: []byte(`"http://x"`)}}}
	b := timed("b", "say", v1alpha1.WorkflowStepPhaseFailed, 5, 9)
	b.Reason, b.Message = "Timeout", "took too long"
	run.Status = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, Message: "step b failed",
		StartTime: at(0), EndTime: at(10), Steps: []v1alpha1.WorkflowStepStatus{
			{StepStatus: prepare},
			{StepStatus: timed("group", "step-group", v1alpha1.WorkflowStepPhaseFailed, 3, 9),
				SubStepsStatus: []v1alpha1.StepStatus{timed("a", "say", v1alpha1.WorkflowStepPhaseSucceeded, 3, 5), b}},
			{StepStatus: v1alpha1.StepStatus{ID: "deploy-1", Name: "deploy", Type: "say", Phase: v1alpha1.WorkflowStepPhaseSkipped}},
		}}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	return run
}

// get prints the run's start and duration, each step's start, duration and
// dependencies, sub-steps as a tree under their group, and the outputs.
func TestCLIGetTree(t *testing.T) {
	c := newCluster(t)
	treeRun(t, c)
	want := []string{
		"workflowrun " + c.ns + "/tree: failed: step b failed",
		"started 2026-01-02T03:04:05Z, duration 10s",
		"NAME | TYPE | PHASE | STARTED | DURATION | DEPENDS ON | REASON | MESSAGE",
		"prepare | say | succeeded | 2026-01-02T03:04:05Z | 3s | - | - | -",
		"group | step-group | failed | 2026-01-02T03:04:08Z | 6s | - | - | -",
		"├─ a | say | succeeded | 2026-01-02T03:04:08Z | 2s | - | - | -",
		"└─ b | say | failed | 2026-01-02T03:04:10Z | 4s | a | Timeout | took too long",
		"deploy | say | skipped | - | - | prepare,group | - | -",
		"outputs:",
		`  prepare.url = "http://x"`,
	}
	if diff := cmp.Diff(want, columns(c.ok("get", "tree"))); diff != "" {
		t.Errorf("get tree (-want +got):\n%s", diff)
	}
	wide := columns(c.ok("get", "tree", "-o", "wide"))
	if len(wide) < 7 || wide[2] != "NAME | TYPE | PHASE | STARTED | DURATION | DEPENDS ON | REASON | MESSAGE | ATTEMPT | ID | LAST EXECUTED" ||
		wide[6] != "└─ b | say | failed | 2026-01-02T03:04:10Z | 4s | a | Timeout | took too long | 1 | b-1 | 2026-01-02T03:04:14Z" {
		t.Errorf("get tree -o wide:\n%s", strings.Join(wide, "\n"))
	}
}

// describe shows the run, each step with its times, dependencies, inputs
// and outputs, the context (spec.context and the journal's variables over
// it), the conditions and the run's events, not those of other objects.
func TestCLIDescribe(t *testing.T) {
	c := newCluster(t)
	run := treeRun(t, c)
	ctx := context.Background()
	run = c.get("tree")
	run.Spec.Context = &runtime.RawExtension{Raw: []byte(`{"env":"dev","region":"eu"}`)}
	run.Spec.WorkflowSpec.Steps[1].SubSteps[1].Inputs = v1alpha1.StepInputs{{From: "url", ParameterKey: "endpoint"}}
	run.Spec.WorkflowSpec.Steps[2].Inputs = v1alpha1.StepInputs{{From: "version"}}
	if err := env.Client.Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status.Steps[1].SubStepsStatus[1].Inputs = []v1alpha1.StepOutputValue{{Name: "url", Value: &apiextensionsv1.JSON{Raw: []byte(`"http://x"`)}}}
	run.Status.Conditions = []metav1.Condition{{Type: "Failed", Status: metav1.ConditionTrue, Reason: "StepFailed",
		Message: "step b failed", LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 15, 0, time.UTC))}}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	c.saveJournal(run, journal.Data{Vars: map[string]any{"env": "prod", "approved": true}})
	for i, obj := range []corev1.ObjectReference{
		{Kind: "WorkflowRun", Namespace: c.ns, Name: "tree", UID: run.UID},
		{Kind: "WorkflowRun", Namespace: c.ns, Name: "other", UID: "not-the-run"},
	} {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "tree-", Namespace: c.ns}, InvolvedObject: obj,
			Type: corev1.EventTypeWarning, Reason: "StepFailed", Message: fmt.Sprintf("step b failed (%d)", i),
			// 30 minutes ago: ages of 10m to 3h print whole minutes, so the
			// second the timestamp loses and a slow test do not show.
			Source: corev1.EventSource{Component: "stepflow"}, LastTimestamp: metav1.NewTime(time.Now().Add(-30 * time.Minute))}
		if err := env.Client.Create(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	got := strings.Split(c.ok("describe", "tree"), "\n")
	created := regexp.MustCompile(`^Created: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	for i, l := range got {
		if created.MatchString(l) {
			got[i] = "Created:        (time)"
		}
	}
	want := []string{
		"Name:           tree",
		"Namespace:      " + c.ns,
		"Labels:         <none>",
		"Created:        (time)",
		"Phase:          failed",
		"Message:        step b failed",
		"Mode:           <none>",
		"Started:        2026-01-02T03:04:05Z",
		"Ended:          2026-01-02T03:04:15Z",
		"Duration:       10s",
		"Steps:",
		"  prepare:",
		"    Type:           say",
		"    Phase:          succeeded",
		"    Attempt:        1",
		"    Started:        2026-01-02T03:04:05Z",
		"    Last Executed:  2026-01-02T03:04:08Z",
		"    Duration:       3s",
		"    Outputs:",
		`      url = "http://x"`,
		"  group:",
		"    Type:           step-group",
		"    Phase:          failed",
		"    Attempt:        1",
		"    Started:        2026-01-02T03:04:08Z",
		"    Last Executed:  2026-01-02T03:04:14Z",
		"    Duration:       6s",
		"    a:",
		"      Type:           say",
		"      Phase:          succeeded",
		"      Attempt:        1",
		"      Started:        2026-01-02T03:04:08Z",
		"      Last Executed:  2026-01-02T03:04:10Z",
		"      Duration:       2s",
		"    b:",
		"      Type:           say",
		"      Phase:          failed",
		"      Reason:         Timeout",
		"      Message:        took too long",
		"      Depends On:     a",
		"      Attempt:        1",
		"      Started:        2026-01-02T03:04:10Z",
		"      Last Executed:  2026-01-02T03:04:14Z",
		"      Duration:       4s",
		"      Debug:          stepflow debug -n " + c.ns + " tree --step b",
		"      Inputs:",
		`        url = "http://x"`,
		"  deploy:",
		"    Type:           say",
		"    Phase:          skipped",
		"    Depends On:     prepare, group",
		"    Inputs:",
		"      version (not read yet)",
		"Context:",
		"  approved = true",
		`  env = "prod"`,
		`  region = "eu"`,
		"Conditions:",
		"  TYPE     STATUS   REASON       LAST TRANSITION        MESSAGE",
		"  Failed   True     StepFailed   2026-01-02T03:04:15Z   step b failed",
		"Events:",
		"  TYPE      REASON       AGE   FROM       MESSAGE",
		"  Warning   StepFailed   30m   stepflow   step b failed (0)",
		"",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("describe tree (-want +got):\n%s", diff)
	}
	c.fails("workflowrun "+c.ns+"/nope not found", "describe", "nope")
	c.fails("stepflow describe does not print -o yaml", "describe", "tree", "-o", "yaml")
}
