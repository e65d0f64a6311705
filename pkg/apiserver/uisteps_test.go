package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// flakyStep logs, posts context.apiToken to parameter.url and, once the
// post answered 200, logs again and suspends.
const flakyStep = `import (
	"vela/op"
	"encoding/json"
)

context: apiToken: *"none" | string
start: op.#Log & {data: "calling " + parameter.url}
post: op.#HTTPPost & {
	url: parameter.url
	request: {
		body: json.Marshal({token: context.apiToken})
		header: "X-Api-Token": context.apiToken
	}
}
if post.response.statusCode == 200 {
	done: op.#Log & {data: "called: \(post.response.statusCode)"}
	wait: op.#Suspend & {message: "check the call"}
}
parameter: url: string
`

// Secret-looking values: one in the op call's parameters (the run's
// context), one in what it returned. Neither may show in a step's
// details.
const (
	paramSecret  = "tok-SECRET-in-params-7731"
	returnSecret = "ret-SECRET-in-returns-9902"
)

// flakyServer drops, without an answer, every request of the first step
// attempt that calls it (a retryable error: the attempt fails and
// another follows), known by its Idempotency-Key (one per attempt and
// call; Go's transport may send a request once more by itself after a
// reset), and answers the others 200 with returnSecret in the body.
func flakyServer(t *testing.T) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	first := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		if first == "" {
			first = key
		}
		drop := key == first
		mu.Unlock()
		if drop {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"session": "` + returnSecret + `"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A step whose first attempt failed and whose second called an effect
// and suspended: its details show both attempts, the calls of the
// current one (never their parameters or returns), its log lines with
// times and its definition; its followed logs get the lines written
// after the stream opened, then end when it succeeds.
func TestUIStepDetail(t *testing.T) {
	o := newOpsRig(t)
	ctx := context.Background()
	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: o.ten.ns, Name: "flaky",
		Annotations: map[string]string{"definition.oam.dev/description": "calls a flaky server"}}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: flakyStep}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	flaky := flakyServer(t)
	// call is the flaky step, retried soon after a failure.
	limit := int32(2)
	call := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "call", Type: "flaky",
		Properties: rawJSON(t, map[string]any{"url": flaky.URL}),
		Retry:      &v1alpha1.RetryPolicy{Limit: &limit, Backoff: &v1alpha1.RetryBackoff{Initial: "100ms"}}}}
	holdStep := v1alpha1.WorkflowStep{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "hold", Type: "suspend"}}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: o.ten.ns, Name: "st"},
		Spec: v1alpha1.WorkflowRunSpec{Mode: &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeStep},
			WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{holdStep, call}}}}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	o.waitState("st", app.InstanceSuspend)
	base := o.api.URL + "/ui/api/runs/" + o.ten.ns + "/st"
	if code, msg := uiPost(t, base+"/actions/context", o.ten.launchTok, `{"context": {"apiToken": "`+paramSecret+`"}}`, "", nil); code != http.StatusOK {
		t.Fatalf("context: %d %s", code, msg)
	}
	if code, msg := uiPost(t, base+"/actions/resume", o.ten.launchTok, "", "", nil); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, msg)
	}
	o.waitStep("st", "call", v1alpha1.WorkflowStepPhaseSuspending, 2)
	current := o.step("st", "call")

	// The server's cache may lag the live run.
	var got StepDetail
	var body []byte
	eventually(t, func() bool {
		body = nil
		req, _ := http.NewRequest(http.MethodGet, base+"/steps/call", nil)
		req.Header.Set("Authorization", "Bearer "+o.ten.readerTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil {
			t.Fatal(err)
		}
		got = StepDetail{}
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &got) == nil && got.Step.Phase == "suspending"
	})
	for _, secret := range []string{paramSecret, returnSecret} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the step's details show %q:\n%s", secret, body)
		}
	}

	if len(got.Attempts) != 2 {
		t.Fatalf("attempts %+v, want the current and the failed one", got.Attempts)
	}
	now, before := got.Attempts[0], got.Attempts[1]
	if now.Attempt != 2 || now.ID != current.ID || now.Phase != "suspending" || now.Message != "check the call" || now.Started == "" || now.Finished != "" {
		t.Errorf("current attempt %+v (status id %s)", now, current.ID)
	}
	if before.Attempt != 1 || before.ID == current.ID || before.ID == "" || before.Phase != "failed" || before.Message == "" || before.Finished == "" {
		t.Errorf("failed attempt %+v", before)
	}

	calls := map[string]OpCall{}
	for _, c := range got.Calls {
		calls[c.Path] = c
	}
	if c := calls["post"]; c.State != CallReplayed || !strings.Contains(c.Op, "POST") {
		t.Errorf("the post call: %+v (calls %+v)", c, got.Calls)
	}
	suspended := 0
	for _, c := range got.Calls {
		if c.State == CallSuspended {
			suspended++
		}
	}
	if suspended != 1 {
		t.Errorf("calls %+v, want one suspended", got.Calls)
	}

	var lines []string
	for _, l := range got.Logs {
		lines = append(lines, l.Line)
		if l.Time == "" {
			t.Errorf("log line %q has no time", l.Line)
		}
	}
	if want := "calling " + flaky.URL + "|called: 200"; strings.Join(lines, "|") != want {
		t.Errorf("log lines %q, want %q", lines, want)
	}

	if d := got.Definition; d == nil || d.Kind != "WorkflowStepDefinition" || d.Name != "flaky" || d.Namespace != o.ten.ns ||
		d.Source != "namespace" || d.Description != "calls a flaky server" || d.Template != flakyStep {
		t.Errorf("definition %+v", d)
	}
	var hold StepDetail
	if code := uiGet(t, base+"/steps/hold", o.ten.readerTok, &hold); code != http.StatusOK {
		t.Fatalf("hold: %d", code)
	}
	if d := hold.Definition; d == nil || d.Namespace != systemNS || d.Source != "system" || !strings.Contains(d.Template, "#Suspend") {
		t.Errorf("hold's definition %+v", d)
	}
	if len(hold.Attempts) != 1 || hold.Attempts[0].Phase != "succeeded" || hold.Attempts[0].Finished == "" {
		t.Errorf("hold's attempts %+v", hold.Attempts)
	}
	if code := uiGet(t, base+"/steps/nope", o.ten.readerTok, nil); code != http.StatusNotFound {
		t.Errorf("no such step: %d", code)
	}
	other := newTenant(t)
	if code := uiGet(t, base+"/steps/call", other.readerTok, nil); code != http.StatusForbidden {
		t.Errorf("another tenant's reader: %d", code)
	}

	// Without follow: the lines, then the end.
	events := followSSE(t, base+"/steps/call/logs", o.ten.readerTok, "")
	wantLog := func(id, line string) {
		t.Helper()
		ev := next(t, events)
		var l LogLine
		if ev.event != "log" || ev.id != id || json.Unmarshal([]byte(ev.data), &l) != nil || l.Line != line || l.Time == "" {
			t.Fatalf("got %+v, want log line %s %q with a time", ev, id, line)
		}
	}
	wantLogEnd := func(phase string) {
		t.Helper()
		ev := next(t, events)
		var end LogEnd
		if ev.event != "end" || json.Unmarshal([]byte(ev.data), &end) != nil || end.Phase != phase {
			t.Fatalf("got %+v, want the end with phase %s", ev, phase)
		}
	}
	wantLog("1", "calling "+flaky.URL)
	wantLog("2", "called: 200")
	wantLogEnd("suspending")

	// Followed: the lines, then those the step writes after the stream
	// opened (resumed, it is evaluated again), then the end.
	events = followSSE(t, base+"/steps/call/logs?follow=true", o.ten.readerTok, "")
	wantLog("1", "calling "+flaky.URL)
	wantLog("2", "called: 200")
	if code, msg := uiPost(t, base+"/actions/resume", o.ten.launchTok, "", "", nil); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, msg)
	}
	// Each evaluation logs its lines again (the journal keeps a line
	// equal to the step's last one once): how many follow is the
	// controller's business, but they come in order, then the end.
	wantLog("3", "calling "+flaky.URL)
	for n := 4; ; n++ {
		ev := next(t, events)
		if ev.event == "end" {
			var end LogEnd
			if json.Unmarshal([]byte(ev.data), &end) != nil || end.Phase != "succeeded" {
				t.Fatalf("got %+v, want the end with phase succeeded", ev)
			}
			break
		}
		if ev.event != "log" || ev.id != fmt.Sprint(n) {
			t.Fatalf("got %+v, want log line %d or the end", ev, n)
		}
	}
	o.waitState("st", app.InstanceSuccess)
}
