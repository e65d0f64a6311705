package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	httpop "github.com/stepflow-dev/stepflow/pkg/op/http"
)

// A response over the HTTP body bound fails its step at once: the server
// is asked exactly once, not once per retry.
func TestHTTPBodyOverBoundIsNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(strings.Repeat("x", 4096)))
	}))
	t.Cleanup(srv.Close)

	reg := op.NewRegistry().Add(httpop.New(httpop.Options{MaxBodyBytes: 1024}))
	ev, err := eval.New(eval.Options{Ops: reg})
	if err != nil {
		t.Fatal(err)
	}
	def, err := eval.ParseDefinitionSource("fetch.cue", []byte(`
import "vela/op"

get: op.#HTTPGet & {url: parameter.url}
parameter: url: string
`))
	if err != nil {
		t.Fatal(err)
	}
	props, _ := json.Marshal(map[string]string{"url": srv.URL})
	run := &v1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "default", UID: "uid-big"},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "fetch", Type: def.Name, Properties: &runtime.RawExtension{Raw: props}}},
		}}},
	}
	now := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	j := journal.New(journal.Data{}, journal.NewMemory(), journal.Limits{})
	for i := 0; i < 20 && !run.Status.Finished; i++ {
		res, err := engine.Tick(context.Background(), engine.Input{
			Run: run, Steps: run.Spec.WorkflowSpec.Steps,
			Definitions: engine.DefinitionMap{def.Name: def.Definition}, Evaluator: ev, Ops: op.Direct, Journal: j,
			Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		run.Status = res.Status
		if res.WakeAt.After(now) {
			now = res.WakeAt
		} else {
			now = now.Add(time.Second)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("the server was asked %d times, want exactly 1", got)
	}
	st := run.Status
	if st.Phase != v1alpha1.WorkflowRunFailed || len(st.Steps) != 1 {
		t.Fatalf("run is %s (%q), want failed", st.Phase, st.Message)
	}
	if s := st.Steps[0]; s.Phase != v1alpha1.WorkflowStepPhaseFailed || !strings.Contains(s.Message, "larger than 1024 bytes") {
		t.Errorf("step is %s (%s): %q, want failed naming the body bound", s.Phase, s.Reason, s.Message)
	}
}
