package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// TestCallbackRecordCostsNothingWithoutACallback: a run with no callback,
// on a controller with no controller-wide one, costs the status write no
// allocation (and no request: nothing here can make one).
func TestCallbackRecordCostsNothingWithoutACallback(t *testing.T) {
	c := &Callbacks{cfg: CallbackConfig{}.withDefaults()}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", UID: "u"},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{}}}
	after := run.Status.DeepCopy()
	after.StartTime = metav1.NewTime(time.Unix(1, 0))
	after.Phase = v1alpha1.WorkflowRunSucceeded
	after.Steps = []v1alpha1.WorkflowStepStatus{{StepStatus: v1alpha1.StepStatus{Name: "a", ID: "a1", Phase: v1alpha1.WorkflowStepPhaseSucceeded}}}
	now := time.Unix(2, 0)
	if n := testing.AllocsPerRun(100, func() { c.record(context.Background(), run, after, now) }); n != 0 {
		t.Errorf("%v allocations per status write of a run without a callback, want 0", n)
	}
	if after.Callback != nil {
		t.Errorf("status.callback set on a run without a callback: %+v", after.Callback)
	}
	var none *Callbacks
	none.record(context.Background(), run, after, now) // a reconciler built without Setup

	// With the controller-wide callback, the same write records its
	// transitions.
	c.def = &v1alpha1.Callback{URL: "http://hooks.example"}
	c.record(context.Background(), run, after, now)
	if after.Callback == nil || after.Callback.Pending != 4 {
		t.Errorf("status.callback %+v, want runStarted, stepStarted, stepSucceeded and runSucceeded pending", after.Callback)
	}
}

func TestCallbackConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    CallbackConfig
		err  string
	}{
		{"empty", CallbackConfig{}, ""},
		{"full", CallbackConfig{URL: "https://h.example/x", HeadersFromSecret: "s", Events: []v1alpha1.CallbackEvent{"runFailed", "stepSuspended"}}, ""},
		{"not http", CallbackConfig{URL: "ftp://h.example"}, `callback.url "ftp://h.example"`},
		{"no host", CallbackConfig{URL: "http://"}, "not an http(s) URL"},
		{"events without url", CallbackConfig{Events: []v1alpha1.CallbackEvent{"runFailed"}}, "need a url"},
		{"unknown event", CallbackConfig{URL: "http://h", Events: []v1alpha1.CallbackEvent{"runFail"}}, `"runFail" is not an event`},
		{"negative", CallbackConfig{Workers: -1}, "cannot be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("validate() = %v, want %q", err, tc.err)
			}
		})
	}
}
