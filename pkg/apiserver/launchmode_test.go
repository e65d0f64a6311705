package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func TestLaunchMode(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	r := send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=testapp&mode=sideways", ten.launchTok, grayRelease(t))
	r.want(t, http.StatusBadRequest, CodeBadInput)
	if want := `mode "sideways": want STEP_BY_STEP or DAG`; r.Message != want {
		t.Errorf("message %q, want %q", r.Message, want)
	}
	assertNoRuns(t, ten.ns)

	for mode, want := range map[string]v1alpha1.WorkflowMode{"DAG": v1alpha1.WorkflowModeDAG, "STEP_BY_STEP": v1alpha1.WorkflowModeStep} {
		r := send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=testapp&mode="+mode, ten.launchTok, grayRelease(t))
		r.want(t, http.StatusOK, http.StatusOK)
		var in Instance
		if err := json.Unmarshal(r.Data, &in); err != nil {
			t.Fatal(err)
		}
		var run v1alpha1.WorkflowRun
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: in.Namespace, Name: in.Name}, &run); err != nil {
			t.Fatal(err)
		}
		if run.Spec.Mode == nil || run.Spec.Mode.Steps != want {
			t.Errorf("mode=%s: the run's spec.mode is %+v, want steps %s", mode, run.Spec.Mode, want)
		}
	}
}
