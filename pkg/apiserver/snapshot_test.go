package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/app"
)

// Context variables too large to snapshot within the journal's bound do
// not fail the run; a retryFromTask of a step that saw them is a 409 that
// says why (its snapshot was not kept), not a 500, and the run stays as it
// was.
func TestRetryFromTaskWithoutSnapshotIs409(t *testing.T) {
	o := newOpsRig(t)
	id := o.createRun("large", "hold:suspend", "b:echo")
	o.waitState("large", app.InstanceSuspend)
	// Fits the journal's bound of 768 KiB once, not twice.
	body, err := json.Marshal(map[string]any{"context": map[string]any{"flag": "one", "big": strings.Repeat("x", 400<<10)}})
	if err != nil {
		t.Fatal(err)
	}
	o.put(id, "context", string(body)).want(t, http.StatusOK, http.StatusOK)
	o.put(id, "resume", "").want(t, http.StatusOK, http.StatusOK)
	o.waitState("large", app.InstanceSuccess)
	if got := o.hits.get(); len(got) != 1 || got[0] != "b=one" {
		t.Fatalf("posts %v, want b=one", got)
	}

	b := o.step("large", "b")
	r := o.put(id, "retryFromTask?taskId=b", "")
	r.want(t, http.StatusConflict, http.StatusConflict)
	for _, want := range []string{`retry from step "b"`, "context snapshot was not kept", "bound"} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("409 message %q does not say %q", r.Message, want)
		}
	}
	if got := o.step("large", "b"); got.ID != b.ID || got.Phase != b.Phase || app.InstanceState(o.run("large")) != app.InstanceSuccess {
		t.Errorf("a refused retry changed the run: b %+v", got)
	}
}
