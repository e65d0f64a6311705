package v1alpha1

import (
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestKubeVelaFieldNames checks that KubeVela's JSON names land in the Go
// fields the engine reads, where the two names differ or nest.
func TestKubeVelaFieldNames(t *testing.T) {
	data, err := os.ReadFile("testdata/run-with-status.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var run WorkflowRun
	if err := yaml.UnmarshalStrict(data, &run); err != nil {
		t.Fatal(err)
	}

	steps := run.Spec.WorkflowSpec.Steps
	group := run.Status.Steps[1]
	got := map[string]any{
		"status.status":                         run.Status.Phase,
		"status.suspend":                        run.Status.Suspend,
		"status.mode.subSteps":                  run.Status.Mode.SubSteps,
		"status.steps[0].attempt":               run.Status.Steps[0].Attempt,
		"status.steps[0].outputs[0].value":      string(run.Status.Steps[0].Outputs[0].Value.Raw),
		"status.steps[1].subSteps[1].phase":     group.SubStepsStatus[1].Phase,
		"status.steps[1].subSteps[1].resume":    group.SubStepsStatus[1].ResumeTime.UTC(),
		"spec...steps[0].retry.backoff.factor":  steps[0].Retry.Backoff.Factor,
		"spec...steps[1].mode":                  *steps[1].Mode,
		"spec...steps[1].subSteps[0].retry.lim": *steps[1].SubSteps[0].Retry.Limit,
	}
	want := map[string]any{
		"status.status":                         WorkflowRunSuspending,
		"status.suspend":                        true,
		"status.mode.subSteps":                  WorkflowModeStep,
		"status.steps[0].attempt":               int32(2),
		"status.steps[0].outputs[0].value":      "200",
		"status.steps[1].subSteps[1].phase":     WorkflowStepPhaseSuspending,
		"status.steps[1].subSteps[1].resume":    time.Date(2025, 1, 1, 10, 8, 0, 0, time.UTC),
		"spec...steps[0].retry.backoff.factor":  "2",
		"spec...steps[1].mode":                  WorkflowModeStep,
		"spec...steps[1].subSteps[0].retry.lim": int32(1),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestRetryLimitZeroIsKept: limit: 0 (no retries) stays distinct from no
// limit (the default) through JSON.
func TestRetryLimitZeroIsKept(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want *int32
	}{
		{"{}", nil},
		{"{limit: 0}", ptr(int32(0))},
		{"{limit: 3}", ptr(int32(3))},
	} {
		var p RetryPolicy
		if err := yaml.UnmarshalStrict([]byte(tc.yaml), &p); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, p.Limit); diff != "" {
			t.Errorf("%s: limit (-want +got):\n%s", tc.yaml, diff)
		}
		data, err := yaml.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		var back RetryPolicy
		if err := yaml.UnmarshalStrict(data, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Errorf("%s: round trip through %q (-want +got):\n%s", tc.yaml, data, diff)
		}
	}
}

func ptr[T any](v T) *T { return &v }
