package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// uiPost is POST u with tok, the body and an If-Match header (when set);
// its status, and its body decoded into out (nil: not decoded) when 200,
// else the error message.
func uiPost(t testing.TB, u, tok, body, ifMatch string, out any) (int, string) {
	t.Helper()
	status, b, _ := uiRequest(t, http.MethodPost, u, tok, body, ifMatch)
	if status != http.StatusOK {
		var e uiError
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Fatalf("POST %s: %d without {\"error\": message}: %s", u, status, b)
		}
		return status, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %v\n%s", u, err, b)
		}
	}
	return status, ""
}

// The actions a run allows follow its state, as the operations decide
// them (no controller runs: the statuses are written by hand); an action
// the flags allow is done, one they refuse is a 409 naming the state.
func TestUIActionFlags(t *testing.T) {
	ten := newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	steps := []v1alpha1.WorkflowStep{
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "a", Type: "suspend"}},
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "b", Type: "suspend"}},
	}
	none := []string{}
	for _, tc := range []struct {
		name   string
		status func(st *v1alpha1.WorkflowRunStatus)
		want   Actions
	}{
		{"suspended", func(st *v1alpha1.WorkflowRunStatus) {
			st.Phase = v1alpha1.WorkflowRunSuspending
			st.Steps = []v1alpha1.WorkflowStepStatus{step("a", "suspend", v1alpha1.WorkflowStepPhaseSuspending, "", 1700000000, 0)}
		}, Actions{Resume: true, Terminate: true, SetContext: true, RetryFrom: none}},
		{"running", func(st *v1alpha1.WorkflowRunStatus) {
			st.Phase = v1alpha1.WorkflowRunExecuting
			st.Steps = []v1alpha1.WorkflowStepStatus{step("a", "suspend", v1alpha1.WorkflowStepPhaseRunning, "", 1700000000, 0)}
		}, Actions{Suspend: true, Terminate: true, SetContext: true, RetryFrom: none}},
		{"failed", func(st *v1alpha1.WorkflowRunStatus) {
			st.Phase, st.Finished = v1alpha1.WorkflowRunFailed, true
			st.Steps = []v1alpha1.WorkflowStepStatus{step("a", "suspend", v1alpha1.WorkflowStepPhaseFailed, "", 1700000000, 1700000001)}
		}, Actions{Retry: true, RetryFrom: []string{"a", "b"}}},
		{"succeeded", func(st *v1alpha1.WorkflowRunStatus) {
			st.Phase, st.Finished = v1alpha1.WorkflowRunSucceeded, true
			st.Steps = []v1alpha1.WorkflowStepStatus{
				step("a", "suspend", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000000, 1700000001),
				step("b", "suspend", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000001, 1700000002),
			}
		}, Actions{Retry: true, RetryFrom: []string{"a", "b"}}},
		{"rolled back", func(st *v1alpha1.WorkflowRunStatus) {
			st.Phase, st.Finished = v1alpha1.WorkflowRunRolledBack, true
			st.Steps = []v1alpha1.WorkflowStepStatus{step("a", "suspend", v1alpha1.WorkflowStepPhaseFailed, "", 1700000000, 1700000001)}
		}, Actions{Retry: true, RetryFrom: none}}, // what its steps did was undone: retry from the start only
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			run := create(t, uiRunObj(ten.ns, name, "", "", nil, steps...))
			setStatus(t, run, tc.status)
			var got RunDetail
			if code := uiGet(t, srv.URL+"/ui/api/runs/"+ten.ns+"/"+name, ten.launchTok, &got); code != http.StatusOK {
				t.Fatal(code)
			}
			if d := cmp.Diff(tc.want, got.Actions); d != "" {
				t.Errorf("actions (-want +got):\n%s", d)
			}
			// A reader, who may not update runs, is offered none.
			var read RunDetail
			if code := uiGet(t, srv.URL+"/ui/api/runs/"+ten.ns+"/"+name, ten.readerTok, &read); code != http.StatusOK {
				t.Fatal(code)
			}
			if d := cmp.Diff(Actions{RetryFrom: none}, read.Actions); d != "" {
				t.Errorf("a reader's actions (-want +got):\n%s", d)
			}
			// Each action the flags refuse is refused, naming the state,
			// and changes nothing.
			base := srv.URL + "/ui/api/runs/" + ten.ns + "/" + name + "/actions/"
			for verb, allowed := range map[string]bool{"resume": tc.want.Resume, "suspend": tc.want.Suspend,
				"terminate": tc.want.Terminate, "retry": tc.want.Retry, "context": tc.want.SetContext} {
				if allowed {
					continue
				}
				code, msg := uiPost(t, base+verb, ten.launchTok, `{"context": {"k": 1}}`, "", nil)
				if code != http.StatusConflict || !strings.Contains(msg, "it is "+got.Run.Phase) {
					t.Errorf("%s: %d %q, want 409 naming the phase %s", verb, code, msg, got.Run.Phase)
				}
			}
			for _, s := range []string{"a", "b"} {
				if slices.Contains(tc.want.RetryFrom, s) {
					continue
				}
				code, msg := uiPost(t, base+"retry-from", ten.launchTok, `{"step": "`+s+`"}`, "", nil)
				if code != http.StatusConflict || !strings.Contains(msg, "it is "+got.Run.Phase) {
					t.Errorf("retry-from %s: %d %q, want 409 naming the phase %s", s, code, msg, got.Run.Phase)
				}
			}
			var after v1alpha1.WorkflowRun
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), &after); err != nil {
				t.Fatal(err)
			}
			if after.ResourceVersion != run.ResourceVersion {
				t.Errorf("refused actions changed the run: version %s -> %s", run.ResourceVersion, after.ResourceVersion)
			}
		})
	}

	// Suspend of the running run: done, and it then may be resumed, not
	// suspended again.
	var res ActionResult
	if code, msg := uiPost(t, srv.URL+"/ui/api/runs/"+ten.ns+"/running/actions/suspend", ten.launchTok, "", "", &res); code != http.StatusOK {
		t.Fatalf("suspend of a running run: %d %s", code, msg)
	}
	if res.Run.Name != "running" || res.Run.ResourceVersion == "" {
		t.Errorf("suspend answered %+v", res.Run)
	}
	var live v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ten.ns, Name: "running"}, &live); err != nil {
		t.Fatal(err)
	}
	if !live.Status.Suspend || app.InstanceState(&live) != app.InstanceSuspend {
		t.Errorf("after suspend: suspend %v, %s", live.Status.Suspend, app.InstanceState(&live))
	}
	inCache(t, &live)
	var got RunDetail
	uiGet(t, srv.URL+"/ui/api/runs/"+ten.ns+"/running", ten.launchTok, &got)
	if !got.Actions.Resume || got.Actions.Suspend {
		t.Errorf("a suspended run's actions: %+v", got.Actions)
	}
}

// Requests the actions refuse before acting: no token, a reader (the
// review of update), no such run or verb, bad bodies, a stale If-Match.
func TestUIActionRefusals(t *testing.T) {
	ten := newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	run := create(t, uiRunObj(ten.ns, "r", "", "", nil))
	setStatus(t, run, func(st *v1alpha1.WorkflowRunStatus) {
		st.Phase = v1alpha1.WorkflowRunSuspending
		st.Steps = []v1alpha1.WorkflowStepStatus{step("wait", "suspend", v1alpha1.WorkflowStepPhaseSuspending, "", 1700000000, 0)}
	})
	base := srv.URL + "/ui/api/runs/" + ten.ns + "/r/actions/"
	for _, tc := range []struct {
		verb, tok, body, ifMatch string
		want                     int
	}{
		{"resume", "", "", "", http.StatusUnauthorized},
		{"resume", ten.readerTok, "", "", http.StatusForbidden},
		{"context", ten.readerTok, `{"context": {"a": 1}}`, "", http.StatusForbidden},
		{"fly", ten.launchTok, "", "", http.StatusNotFound},
		{"retry-from", ten.launchTok, "", "", http.StatusBadRequest},
		{"retry-from", ten.launchTok, `{"step": 1}`, "", http.StatusBadRequest},
		{"context", ten.launchTok, "", "", http.StatusBadRequest},
		{"context", ten.launchTok, `{"context": {}}`, "", http.StatusBadRequest},
		{"context", ten.launchTok, `{"context": {"stepName": "x"}}`, "", http.StatusBadRequest},
		{"context", ten.launchTok, `not json`, "", http.StatusBadRequest},
		{"resume", ten.launchTok, "", `"1"`, http.StatusConflict},
		{"resume", ten.launchTok, "", "abc", http.StatusBadRequest},
	} {
		if code, msg := uiPost(t, base+tc.verb, tc.tok, tc.body, tc.ifMatch, nil); code != tc.want {
			t.Errorf("%s (body %q, If-Match %q): %d %s, want %d", tc.verb, tc.body, tc.ifMatch, code, msg, tc.want)
		}
	}
	if code, _ := uiPost(t, srv.URL+"/ui/api/runs/"+ten.ns+"/nobody/actions/resume", ten.launchTok, "", "", nil); code != http.StatusNotFound {
		t.Errorf("resume of no run: %d", code)
	}
	var after v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != run.ResourceVersion {
		t.Errorf("refused actions changed the run: version %s -> %s", run.ResourceVersion, after.ResourceVersion)
	}
	// The version the caller saw goes through.
	var res ActionResult
	if code, msg := uiPost(t, base+"resume", ten.launchTok, "", `"`+after.ResourceVersion+`"`, &res); code != http.StatusOK {
		t.Fatalf("resume with the current If-Match: %d %s", code, msg)
	}
	if res.Run.ResourceVersion == after.ResourceVersion {
		t.Errorf("resume answered the run before the write: %+v", res.Run)
	}
}

// The actions on a run the controller moves: set context and resume
// through the UI, with If-Match, recorded with the caller's name on the
// run and in Operated Events; a stale If-Match changes nothing; the run
// then succeeds and may be retried, or retried from a step.
func TestUIActionsMoveARun(t *testing.T) {
	o := newOpsRig(t)
	o.createRun("gray", "hold:suspend", "b:echo")
	o.waitState("gray", app.InstanceSuspend)
	base := o.api.URL + "/ui/api/runs/" + o.ten.ns + "/gray"
	detail := func(ok func(RunDetail) bool) RunDetail {
		t.Helper()
		var got RunDetail
		eventually(t, func() bool {
			return uiGet(t, base, o.ten.launchTok, &got) == http.StatusOK && ok(got)
		})
		return got
	}
	d := detail(func(d RunDetail) bool { return d.Actions.Resume })
	if d.Actions.Retry || d.Actions.Suspend || !d.Actions.SetContext || !d.Actions.Terminate {
		t.Errorf("actions of the suspended run: %+v", d.Actions)
	}

	// A stale If-Match: 409, nothing written.
	seen := d.Run.ResourceVersion
	moved := o.run("gray")
	moved.Labels = map[string]string{"touched": "yes"}
	if err := env.Client.Update(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	if code, msg := uiPost(t, base+"/actions/context", o.ten.launchTok, `{"context": {"flag": "stale"}}`, seen, nil); code != http.StatusConflict {
		t.Fatalf("context with a stale If-Match: %d %s", code, msg)
	}
	if vars := o.vars("gray"); len(vars) != 0 {
		t.Fatalf("a stale context set %v", vars)
	}

	// The current version: done (a few tries: the controller may write
	// the run between the read and the action), and who did it is
	// recorded.
	for try := 0; ; try++ {
		code, msg := uiPost(t, base+"/actions/context", o.ten.launchTok, `{"context": {"flag": "ui"}}`, `"`+o.run("gray").ResourceVersion+`"`, nil)
		if code == http.StatusConflict && try < 5 {
			continue
		}
		if code != http.StatusOK {
			t.Fatalf("context: %d %s", code, msg)
		}
		break
	}
	var res ActionResult
	if code, msg := uiPost(t, base+"/actions/resume", o.ten.launchTok, "", "", &res); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, msg)
	}
	if res.Run.Name != "gray" {
		t.Errorf("resume answered %+v", res.Run)
	}
	o.waitState("gray", app.InstanceSuccess)
	if got := o.hits.get(); len(got) != 1 || got[0] != "b=ui" {
		t.Fatalf("posts %v, want b=ui (the context set through the UI)", got)
	}
	if got := o.run("gray").Annotations[runop.AnnotationOperatedBy]; got != o.launcher {
		t.Errorf("operated-by %q, want %q", got, o.launcher)
	}
	o.waitEvent("gray", "set context by "+o.launcher+": variables flag")
	o.waitEvent("gray", "resume by "+o.launcher)

	// Finished: retry and retry from its steps, nothing else.
	d = detail(func(d RunDetail) bool { return d.Actions.Retry })
	if d.Actions.Resume || d.Actions.Suspend || d.Actions.Terminate || d.Actions.SetContext || !cmp.Equal(d.Actions.RetryFrom, []string{"hold", "b"}) {
		t.Errorf("actions of the succeeded run: %+v", d.Actions)
	}
	if code, msg := uiPost(t, base+"/actions/terminate", o.ten.launchTok, "", "", nil); code != http.StatusConflict {
		t.Errorf("terminate of a finished run: %d %s, want 409", code, msg)
	}
	if code, msg := uiPost(t, base+"/actions/retry-from", o.ten.launchTok, `{"step": "nope"}`, "", nil); code != http.StatusNotFound {
		t.Errorf("retry from no such step: %d %s, want 404", code, msg)
	}
	if code, msg := uiPost(t, base+"/actions/retry-from", o.ten.launchTok, `{"step": "b"}`, "", nil); code != http.StatusOK {
		t.Fatalf("retry from b: %d %s", code, msg)
	}
	eventually(t, func() bool { return len(o.hits.get()) == 2 })
	o.waitState("gray", app.InstanceSuccess)
	if got := o.hits.get(); got[1] != "b=ui" {
		t.Errorf("posts %v, want b=ui again (what b saw)", got)
	}
	o.waitEvent("gray", "retry from step by "+o.launcher+": step b")
}
