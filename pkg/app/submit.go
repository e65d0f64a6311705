package app

import (
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Submission asks for a run that is not an application's: of a stored
// Workflow (`stepflow submit --from workflow/NAME`, the UI's launch from a
// Workflow) or of one step (the UI's launch from a definition).
type Submission struct {
	// Namespace is where the run is created.
	Namespace string
	// Name is the run's name; empty: generated from GenerateName, else
	// from the Workflow's name or the step type and a dash.
	Name, GenerateName string
	// Workflow names the stored Workflow the run runs (workflowRef);
	// else StepType is the type of its one step, which is named after it
	// and given Properties.
	Workflow   string
	StepType   string
	Properties map[string]any
	// Context is the run's spec.context; empty: none.
	Context map[string]any
	// Creator, when set, is who submits (AnnotationCreator).
	Creator string
}

// Run is the WorkflowRun s asks for, not yet created. It checks nothing
// in the cluster: whether the Workflow or the step type exists is the
// caller's to look up.
func (s Submission) Run() (*v1alpha1.WorkflowRun, error) {
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, GenerateName: s.GenerateName}}
	switch {
	case s.Workflow != "" && s.StepType != "":
		return nil, fmt.Errorf("a run of workflow %q or of step type %q, not both", s.Workflow, s.StepType)
	case s.Workflow != "":
		run.Spec.WorkflowRef = s.Workflow
	case s.StepType != "":
		step := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: s.StepType, Type: s.StepType}}
		if len(s.Properties) > 0 {
			raw, err := json.Marshal(s.Properties)
			if err != nil {
				return nil, fmt.Errorf("the properties of step %q: %w", s.StepType, err)
			}
			step.Properties = &runtime.RawExtension{Raw: raw}
		}
		run.Spec.WorkflowSpec = &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{step}}
	default:
		return nil, errors.New("a run of what: name a workflow or a step type")
	}
	if s.Name == "" && s.GenerateName == "" {
		run.GenerateName = s.Workflow + s.StepType + "-"
	}
	if len(s.Context) > 0 {
		raw, err := json.Marshal(s.Context)
		if err != nil {
			return nil, fmt.Errorf("the run's context: %w", err)
		}
		run.Spec.Context = &runtime.RawExtension{Raw: raw}
	}
	if s.Creator != "" {
		run.Annotations = map[string]string{AnnotationCreator: s.Creator}
	}
	return run, nil
}
