package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// launchGray launches the gray release as ten's launcher and returns the
// instance and its run as the API server has it.
func launchGray(t *testing.T, srv string, ten tenant) (Instance, *v1alpha1.WorkflowRun) {
	t.Helper()
	r := send(t, http.MethodPost, srv+"/workflow/launch?appId=testapp", ten.launchTok, grayRelease(t))
	r.want(t, http.StatusOK, http.StatusOK)
	var in Instance
	if err := json.Unmarshal(r.Data, &in); err != nil {
		t.Fatal(err)
	}
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: in.Namespace, Name: in.Name}, &run); err != nil {
		t.Fatal(err)
	}
	return in, &run
}

// setSteps writes the run's status as the controller would: executing,
// with these step statuses; it waits until the server's cache has it.
func setSteps(t *testing.T, run *v1alpha1.WorkflowRun, steps ...v1alpha1.WorkflowStepStatus) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), run); err != nil {
		t.Fatal(err)
	}
	run.Status.Phase = v1alpha1.WorkflowRunExecuting
	run.Status.StartTime = metav1.NewTime(time.Unix(1700000000, 0))
	run.Status.Steps = steps
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		var cached v1alpha1.WorkflowRun
		return conn.GetClient().Get(ctx, client.ObjectKeyFromObject(run), &cached) == nil &&
			cached.ResourceVersion == run.ResourceVersion
	})
}

func step(name, typ string, phase v1alpha1.WorkflowStepPhase, message string, first, last int64) v1alpha1.WorkflowStepStatus {
	st := v1alpha1.StepStatus{ID: name + "-id", Name: name, Type: typ, Phase: phase, Message: message}
	if first > 0 {
		st.FirstExecuteTime = metav1.NewTime(time.Unix(first, 0))
	}
	if last > 0 {
		st.LastExecuteTime = metav1.NewTime(time.Unix(last, 0))
	}
	return v1alpha1.WorkflowStepStatus{StepStatus: st}
}

// held is st with what the last task operation said.
func held(st v1alpha1.WorkflowStepStatus, extMessage string) v1alpha1.WorkflowStepStatus {
	st.ExtMessage = extMessage
	return st
}

func ms(sec int64) *int64 {
	v := sec * 1000
	return &v
}

func TestTasks(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	in, run := launchGray(t, srv.URL, ten)
	steps := run.Spec.WorkflowSpec.Steps
	if len(steps) != 5 {
		t.Fatalf("the gray release has %d steps, want 5", len(steps))
	}
	name := func(i int) string { return steps[i-1].Name }
	// 1 done, 2 failed, 3 running; 4 and 5 not started (no status).
	setSteps(t, run,
		step(name(1), "apply-components", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000001, 1700000005),
		step(name(2), "apply-components", v1alpha1.WorkflowStepPhaseFailed, "apply: the StatefulSet was refused", 1700000006, 1700000009),
		held(step(name(3), "suspend", v1alpha1.WorkflowStepPhaseRunning, "", 1700000010, 1700000012), "resumed: looks good"),
	)
	lock := lockVersion(run)
	base := srv.URL + "/workflow/" + fmt.Sprint(in.ID) + "/tasks"

	list := func(q string) Page[map[string]any] {
		t.Helper()
		r := send(t, http.MethodGet, base+"?"+q, ten.readerTok, "")
		r.want(t, http.StatusOK, http.StatusOK)
		var p Page[map[string]any]
		if err := json.Unmarshal(r.Data, &p); err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			if _, ok := it["taskProperties"]; ok {
				t.Errorf("%s: list item %v has taskProperties", q, it["id"])
			}
		}
		return p
	}

	// The whole list, as typed tasks.
	r := send(t, http.MethodGet, base, ten.readerTok, "")
	r.want(t, http.StatusOK, http.StatusOK)
	var all Page[Task]
	if err := json.Unmarshal(r.Data, &all); err != nil {
		t.Fatal(err)
	}
	created := in.GmtCreate
	common := Task{WorkflowInstanceID: in.ID, AppID: "testapp", LockVersion: lock, GmtCreate: created}
	want := []Task{
		{ID: 1, Name: name(1), TaskType: "apply-components", TaskStatus: "SUCCESS", GmtStart: ms(1700000001), GmtEnd: ms(1700000005), GmtModified: max(created, 1700000005000)},
		{ID: 2, Name: name(2), TaskType: "apply-components", TaskStatus: "FAILURE", GmtStart: ms(1700000006), GmtEnd: ms(1700000009), GmtModified: max(created, 1700000009000),
			TaskErrorMessage: "apply: the StatefulSet was refused"},
		{ID: 3, Name: name(3), TaskType: "suspend", TaskStatus: "RUNNING", GmtStart: ms(1700000010), GmtModified: max(created, 1700000012000),
			ExtMessage: "resumed: looks good"},
		{ID: 4, Name: name(4), TaskType: "rollout-promotion", TaskStatus: "PENDING", GmtModified: created},
		{ID: 5, Name: name(5), TaskType: "apply-components", TaskStatus: "PENDING", GmtModified: created},
	}
	for i := range want {
		want[i].WorkflowInstanceID, want[i].AppID, want[i].LockVersion, want[i].GmtCreate =
			common.WorkflowInstanceID, common.AppID, common.LockVersion, common.GmtCreate
	}
	if diff := cmp.Diff(want, all.Items); diff != "" || all.Total != 5 || all.Empty || all.Page != 1 || all.PageSize != defaultPageSize {
		t.Errorf("GET %s: total %d, page %d/%d, empty %v; items (-want +got):\n%s", base, all.Total, all.Page, all.PageSize, all.Empty, diff)
	}

	ids := func(p Page[map[string]any]) string {
		var out []string
		for _, it := range p.Items {
			out = append(out, fmt.Sprint(it["id"]))
		}
		return fmt.Sprintf("%d:%s", p.Total, strings.Join(out, ","))
	}
	for _, tc := range []struct{ q, want string }{
		{"taskStatus=PENDING", "2:4,5"},
		{"taskStatus=FAILURE", "1:2"},
		{"taskType=apply-components", "3:1,2,5"},
		{"taskType=suspend&taskStatus=RUNNING", "1:3"},
		{"taskType=suspend&taskStatus=PENDING", "0:"},
		{"taskId=3", "1:3"},
		{"taskId=" + url.QueryEscape(name(4)), "1:4"},
		{"taskId=9", "0:"},
		{"appId=testapp", "5:1,2,3,4,5"},
		{"appId=another", "0:"},
		{"deployAppId=7", "0:"},
		{"deployWorkflowInstanceId=7", "0:"},
		{"pageSize=2", "5:1,2"},
		{"pageSize=2&page=2", "5:3,4"},
		{"pageSize=2&page=3", "5:5"},
		{"pageSize=2&page=4", "5:"},
		{"taskType=apply-components&pageSize=2&page=2", "3:5"},
	} {
		p := list(tc.q)
		if got := ids(p); got != tc.want || p.Empty != strings.HasSuffix(tc.want, ":") || p.Items == nil {
			t.Errorf("?%s: total:ids %s, empty %v; want %s", tc.q, got, p.Empty, tc.want)
		}
	}
	for _, q := range []string{"taskStatus=DONE", "pageSize=0", "page=x", "pageSize=1001", "deployAppId=x"} {
		send(t, http.MethodGet, base+"?"+q, ten.readerTok, "").want(t, http.StatusBadRequest, CodeBadInput)
	}

	// One task, by id or name (also through namespace/name), with its
	// properties.
	var wantProps map[string]any
	if err := json.Unmarshal(steps[1].Properties.Raw, &wantProps); err != nil {
		t.Fatal(err)
	}
	byName := srv.URL + "/workflow/" + url.PathEscape(in.Namespace+"/"+in.Name) + "/tasks/" + url.PathEscape(name(2))
	for _, u := range []string{base + "/2", byName} {
		r := send(t, http.MethodGet, u, ten.readerTok, "")
		r.want(t, http.StatusOK, http.StatusOK)
		var got Task
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatal(err)
		}
		w := want[1]
		w.TaskProperties = wantProps
		if diff := cmp.Diff(w, got); diff != "" || len(wantProps) == 0 {
			t.Errorf("GET %s (-want +got):\n%s", u, diff)
		}
	}
	// A step without properties has {}.
	r = send(t, http.MethodGet, base+"/3", ten.readerTok, "")
	r.want(t, http.StatusOK, http.StatusOK)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &raw); err != nil || string(raw["taskProperties"]) != "{}" {
		t.Errorf("task 3's taskProperties: %s (%v), want {}", raw["taskProperties"], err)
	}

	// Not in the instance: 404 naming it.
	for _, id := range []string{"6", "0", "no-such-step"} {
		r := send(t, http.MethodGet, base+"/"+id, ten.readerTok, "")
		r.want(t, http.StatusNotFound, http.StatusNotFound)
		if !strings.Contains(r.Message, "has no task") {
			t.Errorf("task %s: message %q", id, r.Message)
		}
	}
	send(t, http.MethodGet, srv.URL+"/workflow/999999999/tasks", ten.readerTok, "").want(t, http.StatusNotFound, http.StatusNotFound)

	// Another tenant's reader may not see them; nobody without a token.
	other := newTenant(t)
	for _, u := range []string{base, base + "/1"} {
		send(t, http.MethodGet, u, other.readerTok, "").want(t, http.StatusForbidden, http.StatusForbidden)
		send(t, http.MethodGet, u, "", "").want(t, http.StatusUnauthorized, http.StatusUnauthorized)
	}
}

// A run of a Workflow (workflowRef) has that Workflow's steps as tasks,
// PENDING before they start.
func TestTasksOfWorkflowRef(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	ctx := context.Background()
	props := &runtime.RawExtension{Raw: []byte(`{"duration":"1s"}`)}
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "wf"}, WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "first", Type: "suspend", Properties: props}},
		{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "second", Type: "suspend"}},
	}}}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "by-ref"},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowRef: "wf"}}
	for _, o := range []client.Object{wf, run} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	base := srv.URL + "/workflow/" + url.PathEscape(ten.ns+"/by-ref") + "/tasks"
	var p Page[Task]
	eventually(t, func() bool {
		r := send(t, http.MethodGet, base, ten.readerTok, "")
		p = Page[Task]{}
		return r.status == http.StatusOK && json.Unmarshal(r.Data, &p) == nil && p.Total == 2
	})
	if p.Items[0].Name != "first" || p.Items[1].Name != "second" || p.Items[1].TaskStatus != "PENDING" || p.Items[0].GmtStart != nil {
		t.Errorf("tasks of a workflowRef run: %+v", p.Items)
	}
	r := send(t, http.MethodGet, base+"/first", ten.readerTok, "")
	r.want(t, http.StatusOK, http.StatusOK)
	var one Task
	if err := json.Unmarshal(r.Data, &one); err != nil || one.ID != 1 || one.TaskProperties["duration"] != "1s" {
		t.Errorf("task first: %+v, %v", one, err)
	}
}
