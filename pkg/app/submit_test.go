package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func TestSubmissionRun(t *testing.T) {
	raw := func(s string) *runtime.RawExtension { return &runtime.RawExtension{Raw: []byte(s)} }
	for _, tc := range []struct {
		name    string
		sub     Submission
		want    *v1alpha1.WorkflowRun
		wantErr string
	}{
		{"a Workflow with context, the name generated from it",
			Submission{Namespace: "ns", Workflow: "deploy", Context: map[string]any{"env": map[string]any{"name": "prod"}}},
			&v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", GenerateName: "deploy-"},
				Spec: v1alpha1.WorkflowRunSpec{WorkflowRef: "deploy", Context: raw(`{"env":{"name":"prod"}}`)}}, ""},
		{"a Workflow, named, no context",
			Submission{Namespace: "ns", Workflow: "deploy", Name: "v2"},
			&v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "v2"}, Spec: v1alpha1.WorkflowRunSpec{WorkflowRef: "deploy"}}, ""},
		{"one step named after its type, with properties and the creator",
			Submission{Namespace: "ns", StepType: "notify", Properties: map[string]any{"to": "ops"}, Creator: "alice", GenerateName: "n-"},
			&v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", GenerateName: "n-", Annotations: map[string]string{AnnotationCreator: "alice"}},
				Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{
					Name: "notify", Type: "notify", Properties: raw(`{"to":"ops"}`)}}}}}}, ""},
		{"one step without properties", Submission{Namespace: "ns", StepType: "noop"},
			&v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", GenerateName: "noop-"},
				Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "noop", Type: "noop"}}}}}}, ""},
		{"both", Submission{Workflow: "a", StepType: "b"}, nil, "not both"},
		{"neither", Submission{Namespace: "ns"}, nil, "name a workflow or a step type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sub.Run()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
