package framework

import (
	"fmt"

	"github.com/onsi/gomega/types"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// HavePhase matches a *v1alpha1.WorkflowRun in phase p. On failure it
// shows the run's whole status.
func HavePhase(p v1alpha1.WorkflowRunPhase) types.GomegaMatcher {
	return runMatcher{
		want: fmt.Sprintf("be %s", p),
		ok:   func(r *v1alpha1.WorkflowRun) bool { return r.Status.Phase == p },
	}
}

// HaveStepPhase matches a *v1alpha1.WorkflowRun whose step (or sub-step)
// name is in phase p.
func HaveStepPhase(name string, p v1alpha1.WorkflowStepPhase) types.GomegaMatcher {
	return runMatcher{
		want: fmt.Sprintf("have step %s %s", name, p),
		ok: func(r *v1alpha1.WorkflowRun) bool {
			s, ok := Step(r, name)
			return ok && s.Phase == p
		},
	}
}

// HaveStepReason matches a *v1alpha1.WorkflowRun whose step (or sub-step)
// name has the reason given, e.g. "Wait" for a step whose
// #ConditionalWait is not met yet.
func HaveStepReason(name, reason string) types.GomegaMatcher {
	return runMatcher{
		want: fmt.Sprintf("have step %s with reason %s", name, reason),
		ok: func(r *v1alpha1.WorkflowRun) bool {
			s, ok := Step(r, name)
			return ok && s.Reason == reason
		},
	}
}

// Step returns the status of the run's step or sub-step name.
func Step(r *v1alpha1.WorkflowRun, name string) (v1alpha1.StepStatus, bool) {
	for _, s := range r.Status.Steps {
		if s.Name == name {
			return s.StepStatus, true
		}
		for _, sub := range s.SubStepsStatus {
			if sub.Name == name {
				return sub, true
			}
		}
	}
	return v1alpha1.StepStatus{}, false
}

// runMatcher matches a run by a predicate and, when it fails, prints the
// run's status as YAML: what each step did is what explains a failure.
type runMatcher struct {
	want string
	ok   func(*v1alpha1.WorkflowRun) bool
}

var _ types.GomegaMatcher = runMatcher{}

func (m runMatcher) Match(actual any) (bool, error) {
	r, ok := actual.(*v1alpha1.WorkflowRun)
	if !ok || r == nil {
		return false, fmt.Errorf("want a *v1alpha1.WorkflowRun, got %T", actual)
	}
	return m.ok(r), nil
}

func (m runMatcher) FailureMessage(actual any) string {
	return describe(actual, "to "+m.want)
}

func (m runMatcher) NegatedFailureMessage(actual any) string {
	return describe(actual, "not to "+m.want)
}

func describe(actual any, expectation string) string {
	r, ok := actual.(*v1alpha1.WorkflowRun)
	if !ok || r == nil {
		return fmt.Sprintf("Expected a WorkflowRun %s, got %T", expectation, actual)
	}
	status, err := yaml.Marshal(r.Status)
	if err != nil {
		status = []byte(err.Error())
	}
	return fmt.Sprintf("Expected workflowrun %s/%s %s; it is %q, with status:\n%s",
		r.Namespace, r.Name, expectation, r.Status.Phase, indent(string(status)))
}
