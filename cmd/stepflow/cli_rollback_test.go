package main

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// stepflow terminate of a run whose onTerminate is Compensate (its own, or
// its Workflow's) fails its unfinished steps but leaves it unfinished, for
// the controller's next tick to roll back; a run without it is finished at
// once, as before.
func TestCLITerminateRollsBack(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: "saga", Namespace: c.ns},
		Orchestration: v1alpha1.Orchestration{OnTerminate: v1alpha1.FailurePolicyCompensate},
		WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "a", Type: "t"}},
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "b", Type: "t"}},
		}}}
	if err := env.Client.Create(ctx, wf); err != nil {
		t.Fatal(err)
	}
	status := v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		{StepStatus: v1alpha1.StepStatus{Name: "a", Type: "t", Phase: v1alpha1.WorkflowStepPhaseSucceeded}},
		{StepStatus: v1alpha1.StepStatus{Name: "b", Type: "t", Phase: v1alpha1.WorkflowStepPhaseRunning}},
	}}
	for _, tc := range []struct {
		name        string
		spec        v1alpha1.WorkflowRunSpec
		wantPending bool // left unfinished for a rollback
	}{
		{"own", v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: wf.Steps},
			Orchestration: v1alpha1.Orchestration{OnTerminate: v1alpha1.FailurePolicyCompensate}}, true},
		{"by-ref", v1alpha1.WorkflowRunSpec{WorkflowRef: "saga"}, true},
		{"none", v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: wf.Steps}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: c.ns}, Spec: tc.spec}
			if err := env.Client.Create(ctx, run); err != nil {
				t.Fatal(err)
			}
			run.Status = *status.DeepCopy()
			if err := env.Client.Status().Update(ctx, run); err != nil {
				t.Fatal(err)
			}
			c.ok("terminate", tc.name)
			got := c.get(tc.name).Status
			if !got.Terminated || got.Finished == tc.wantPending || got.Steps[1].Reason != "Terminate" {
				t.Errorf("after terminate: terminated %v, finished %v, b %s/%s; want terminated, finished %v, b failed/Terminate",
					got.Terminated, got.Finished, got.Steps[1].Phase, got.Steps[1].Reason, !tc.wantPending)
			}
		})
	}
}
