package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// The retry policy does what the API says: no policy (or one without a
// limit) means DefaultRetryLimit retries, limit: 0 none, limit: n n.
func TestRetryLimit(t *testing.T) {
	ev, err := eval.New(eval.Options{Ops: fuzzCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	backoff := &v1alpha1.RetryBackoff{Initial: "1s", Factor: "1", Max: "1s"}
	for _, tc := range []struct {
		name         string
		policy       *v1alpha1.RetryPolicy
		wantAttempts int
		wantMessage  string
	}{
		{"no policy", nil, engine.DefaultRetryLimit + 1, "failed after 11 attempts: "},
		{"policy without a limit", &v1alpha1.RetryPolicy{Backoff: backoff}, engine.DefaultRetryLimit + 1, "failed after 11 attempts: "},
		{"limit 0", &v1alpha1.RetryPolicy{Limit: ptrTo[int32](0)}, 1, "failed on its first attempt, retry.limit is 0: "},
		{"limit 1", &v1alpha1.RetryPolicy{Limit: ptrTo[int32](1), Backoff: backoff}, 2, "failed after 2 attempts: "},
		{"limit 3", &v1alpha1.RetryPolicy{Limit: ptrTo[int32](3)}, 4, "failed after 4 attempts: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			ops := op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
				calls.Add(1)
				return op.Result{}, errors.New("connection refused")
			})
			steps := []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "s", Type: "error", Retry: tc.policy}}}
			run := &v1alpha1.WorkflowRun{
				ObjectMeta: metav1.ObjectMeta{Name: "retries", Namespace: "default", UID: "uid-retries"},
				Spec:       v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps}},
			}
			j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
			now := fuzzT0
			for i := 0; i < 30 && !run.Status.Finished; i++ {
				res, err := engine.Tick(context.Background(), engine.Input{
					Run: run, Steps: steps, Definitions: fuzzDefinitions, Evaluator: ev, Ops: ops, Journal: j,
					Now: func() time.Time { return now },
				})
				if err != nil {
					t.Fatal(err)
				}
				run.Status = res.Status
				if res.WakeAt.After(now) {
					now = res.WakeAt
				}
			}
			if got := int(calls.Load()); got != tc.wantAttempts {
				t.Errorf("op called %d times, want %d", got, tc.wantAttempts)
			}
			s := run.Status.Steps[0]
			if s.Phase != v1alpha1.WorkflowStepPhaseFailed || s.Reason != engine.ReasonFailedAfterRetries ||
				!strings.HasPrefix(s.Message, tc.wantMessage) || !strings.Contains(s.Message, "connection refused") {
				t.Errorf("step is %s (%s) %q, want failed (%s) %q...", s.Phase, s.Reason, s.Message, engine.ReasonFailedAfterRetries, tc.wantMessage)
			}
			if int(s.Attempt) != tc.wantAttempts {
				t.Errorf("attempt = %d, want %d", s.Attempt, tc.wantAttempts)
			}
		})
	}
}
