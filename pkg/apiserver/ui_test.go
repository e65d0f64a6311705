package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// serveUI starts the API as serve does, with the UI's event stream fed by
// the server's informer of runs (counted), changed by o.
func serveUI(t testing.TB, ns string, o func(*Options)) (*httptest.Server, *countingInformer) {
	t.Helper()
	inf, err := NewRunInformer(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	runs := &countingInformer{RunInformer: inf}
	opts := Options{
		Client: conn.GetClient(), Live: conn.GetAPIReader(),
		Auth:      NewKubernetes(conn.GetClient(), 5*time.Second, time.Now),
		Namespace: ns, SystemNamespace: systemNS, Runs: runs,
	}
	if o != nil {
		o(&opts)
	}
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return srv, runs
}

// countingInformer is the real informer, counting the handlers the
// streams register and remove.
type countingInformer struct {
	RunInformer
	added, removed atomic.Int32
}

func (c *countingInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	c.added.Add(1)
	return c.RunInformer.AddEventHandler(h)
}

func (c *countingInformer) RemoveEventHandler(r toolscache.ResourceEventHandlerRegistration) error {
	c.removed.Add(1)
	return c.RunInformer.RemoveEventHandler(r)
}

// uiGet is GET u with tok, its status and body decoded into out (nil: not
// decoded).
func uiGet(t testing.TB, u, tok string, out any) int {
	t.Helper()
	status, b, h := uiRequest(t, http.MethodGet, u, tok, "", "")
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d, Content-Type %q: %s", u, status, h.Get("Content-Type"), b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v\n%s", u, err, b)
		}
	}
	return status
}

// uiRunObj is a run named name in ns with steps, labels and, when appID is
// set, an app id as a launch sets it.
func uiRunObj(ns, name, appID, category string, extra map[string]string, steps ...v1alpha1.WorkflowStep) *v1alpha1.WorkflowRun {
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps}}}
	if appID != "" {
		run.Labels[app.LabelAppID] = app.LabelValue(appID)
		run.Annotations[app.AnnotationRawAppID] = appID
	}
	if category != "" {
		run.Labels[app.LabelCategory] = category
	}
	for k, v := range extra {
		run.Labels[k] = v
	}
	if len(steps) == 0 {
		run.Spec.WorkflowSpec.Steps = []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "wait", Type: "suspend"}}}
	}
	return run
}

func create(t testing.TB, run *v1alpha1.WorkflowRun) *v1alpha1.WorkflowRun {
	t.Helper()
	if err := env.Client.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	return run
}

// setStatus writes run's status (as the controller would) and waits until
// the server's cache has it.
func setStatus(t testing.TB, run *v1alpha1.WorkflowRun, f func(*v1alpha1.WorkflowRunStatus)) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), run); err != nil {
		t.Fatal(err)
	}
	f(&run.Status)
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	inCache(t, run)
}

// inCache waits until the server's cache has run as it is.
func inCache(t testing.TB, run *v1alpha1.WorkflowRun) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var c v1alpha1.WorkflowRun
		if conn.GetClient().Get(context.Background(), client.ObjectKeyFromObject(run), &c) == nil && c.ResourceVersion == run.ResourceVersion {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache does not have %s/%s at %s after 10s", run.Namespace, run.Name, run.ResourceVersion)
		}
	}
}

func names(items []RunSummary) []string {
	out := []string{}
	for _, r := range items {
		out = append(out, r.Namespace+"/"+r.Name)
	}
	return out
}

func TestUIRunsFiltersAndOrder(t *testing.T) {
	ten, other := newTenant(t), newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	oldest := create(t, uiRunObj(ten.ns, "oldest", "shop", "DEPLOY", map[string]string{"team": "a"}))
	time.Sleep(1100 * time.Millisecond) // creation times have whole seconds
	middle := create(t, uiRunObj(ten.ns, "middle", "shop", "ROLLBACK", map[string]string{"team": "b"}))
	newest := create(t, uiRunObj(ten.ns, "newest", "cart", "DEPLOY", nil))
	hidden := create(t, uiRunObj(other.ns, "elsewhere", "shop", "DEPLOY", nil))
	setStatus(t, middle, func(st *v1alpha1.WorkflowRunStatus) {
		st.Phase = v1alpha1.WorkflowRunSucceeded
		st.StartTime = metav1.NewTime(time.Unix(1700000000, 0))
		st.EndTime = metav1.NewTime(time.Unix(1700000090, 0))
		st.Finished = true
		st.Steps = []v1alpha1.WorkflowStepStatus{step("wait", "suspend", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000000, 1700000090)}
	})
	setStatus(t, newest, func(st *v1alpha1.WorkflowRunStatus) {
		st.Phase = v1alpha1.WorkflowRunSuspending
		st.StartTime = metav1.NewTime(time.Now().Add(-time.Minute))
		st.Steps = []v1alpha1.WorkflowStepStatus{step("wait", "suspend", v1alpha1.WorkflowStepPhaseSuspending, "", 1700000000, 0)}
	})
	for _, r := range []*v1alpha1.WorkflowRun{oldest, hidden} {
		inCache(t, r)
	}
	// newest and middle share a second: the tie goes by name, descending.
	for _, tc := range []struct{ query, want string }{
		{"", "newest middle oldest"},
		{"?namespace=" + ten.ns, "newest middle oldest"},
		{"?app=shop", "middle oldest"},
		{"?category=DEPLOY", "newest oldest"},
		{"?phase=succeeded", "middle"},
		{"?phase=pending", "oldest"},
		{"?label=" + url.QueryEscape("team in (a,b)"), "middle oldest"},
		{"?app=shop&category=DEPLOY", "oldest"},
	} {
		var got RunList
		if code := uiGet(t, srv.URL+"/ui/api/runs"+tc.query, ten.readerTok, &got); code != http.StatusOK {
			t.Fatalf("%s: %d", tc.query, code)
		}
		var want []string
		for _, n := range strings.Fields(tc.want) {
			want = append(want, ten.ns+"/"+n)
		}
		if d := cmp.Diff(want, names(got.Items)); d != "" {
			t.Errorf("runs%s (-want +got):\n%s", tc.query, d)
		}
	}
	var got RunList
	uiGet(t, srv.URL+"/ui/api/runs?phase=succeeded", ten.readerTok, &got)
	m := got.Items[0]
	if m.DurationSeconds != 90 || m.Progress != "1/1" || m.AppID != "shop" || m.Category != "ROLLBACK" || m.Labels["team"] != "b" ||
		m.Started != "2023-11-14T22:13:20Z" || m.Finished != "2023-11-14T22:14:50Z" || m.WaitingOn != "" || m.UID == "" || m.ResourceVersion == "" {
		t.Errorf("the finished run: %+v", m)
	}
	uiGet(t, srv.URL+"/ui/api/runs?phase=suspending", ten.readerTok, &got)
	if n := got.Items[0]; n.WaitingOn != "wait" || n.Progress != "0/1" || n.DurationSeconds < 60 {
		t.Errorf("the suspended run: %+v", n)
	}
	// The other tenant's launcher sees its own run only.
	uiGet(t, srv.URL+"/ui/api/runs", other.launchTok, &got)
	if d := cmp.Diff([]string{other.ns + "/elsewhere"}, names(got.Items)); d != "" {
		t.Errorf("the other tenant's runs (-want +got):\n%s", d)
	}
	if code := uiGet(t, srv.URL+"/ui/api/runs?label=a%20in", ten.readerTok, nil); code != http.StatusBadRequest {
		t.Errorf("a label selector that does not parse: %d", code)
	}
}

func TestUIAuth(t *testing.T) {
	ten, other := newTenant(t), newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	run := create(t, uiRunObj(ten.ns, "mine", "", "", nil))
	inCache(t, run)
	for _, tc := range []struct {
		path, tok string
		want      int
	}{
		{"/ui/api/runs", "", http.StatusUnauthorized},
		{"/ui/api/runs", "not-a-token", http.StatusUnauthorized},
		{"/ui/api/runs/" + ten.ns + "/mine", "", http.StatusUnauthorized},
		{"/ui/api/runs/" + ten.ns + "/mine?access_token=" + ten.readerTok, "", http.StatusUnauthorized}, // only the event stream takes it
		{"/ui/api/events?access_token=not-a-token", "", http.StatusUnauthorized},
		{"/ui/api/runs?namespace=" + ten.ns, other.readerTok, http.StatusForbidden},
		{"/ui/api/runs/" + ten.ns + "/mine", other.readerTok, http.StatusForbidden},
		{"/ui/api/events?namespace=" + ten.ns + "&access_token=" + other.readerTok, "", http.StatusForbidden},
		{"/ui/api/runs/" + ten.ns + "/mine", ten.readerTok, http.StatusOK},
		{"/ui/api/runs/" + ten.ns + "/nobody", ten.readerTok, http.StatusNotFound},
		{"/ui/api/nowhere", ten.readerTok, http.StatusNotFound},
	} {
		if got := uiGet(t, srv.URL+tc.path, tc.tok, nil); got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, got, tc.want)
		}
	}
	// A list of every namespace leaves out those the caller may not list.
	var got RunList
	uiGet(t, srv.URL+"/ui/api/runs", other.readerTok, &got)
	if len(got.Items) != 0 {
		t.Errorf("the other tenant sees %v", names(got.Items))
	}
}

func raw(v string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(v)} }

func TestUIRunDetail(t *testing.T) {
	ten := newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	base := func(name, typ string) v1alpha1.WorkflowStepBase {
		return v1alpha1.WorkflowStepBase{Name: name, Type: typ}
	}
	a := base("a", "apply")
	a.Outputs = v1alpha1.StepOutputs{{Name: "x", ValueFrom: "output.x"}}
	a.Properties = &runtime.RawExtension{Raw: []byte(`{"image":"nginx"}`)}
	b := base("b", "apply")
	b.DependsOn = []string{"a"}
	b.Inputs = v1alpha1.StepInputs{{From: "x", ParameterKey: "image"}}
	c := base("c", "apply")
	c.Inputs = v1alpha1.StepInputs{{From: "x"}}
	g1, g2 := base("g1", "apply"), base("g2", "apply")
	g2.DependsOn = []string{"g1"}
	run := create(t, uiRunObj(ten.ns, "graph", "", "", nil,
		v1alpha1.WorkflowStep{WorkflowStepBase: a},
		v1alpha1.WorkflowStep{WorkflowStepBase: b},
		v1alpha1.WorkflowStep{WorkflowStepBase: c},
		v1alpha1.WorkflowStep{WorkflowStepBase: base("g", "step-group"), SubSteps: []v1alpha1.WorkflowStepBase{g1, g2}},
	))
	setStatus(t, run, func(st *v1alpha1.WorkflowRunStatus) {
		st.Phase = v1alpha1.WorkflowRunExecuting
		st.StartTime = metav1.NewTime(time.Unix(1700000000, 0))
		sa := step("a", "apply", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000000, 1700000010)
		sa.Attempt = 2
		sa.Outputs = []v1alpha1.StepOutputValue{{Name: "x", Value: raw(`"nginx:1.27"`)}}
		sb := step("b", "apply", v1alpha1.WorkflowStepPhaseRunning, "waiting for the rollout", 1700000010, 0)
		sb.Reason = "Wait"
		sb.Inputs = []v1alpha1.StepOutputValue{{Name: "x", Value: raw(`"nginx:1.27"`)}}
		st.Steps = []v1alpha1.WorkflowStepStatus{sa, sb}
	})
	var got RunDetail
	if code := uiGet(t, srv.URL+"/ui/api/runs/"+ten.ns+"/graph", ten.readerTok, &got); code != http.StatusOK {
		t.Fatal(code)
	}
	if got.Run.Progress != "1/4" || got.Run.WaitingOn != "b" || got.Run.Phase != "executing" {
		t.Errorf("run: %+v", got.Run)
	}
	wantEdges := []Edge{
		{From: "a", To: "b", Kind: EdgeDependsOn}, // also its input and its order: one edge
		{From: "a", To: "c", Kind: EdgeInput},
		{From: "b", To: "c", Kind: EdgeOrder},
		{From: "c", To: "g", Kind: EdgeOrder},
		{From: "g1", To: "g2", Kind: EdgeDependsOn},
	}
	if d := cmp.Diff(wantEdges, got.Edges); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
	none := []NamedValue{}
	wantSteps := []StepNode{
		{ID: "a-id", Name: "a", Type: "apply", Phase: "succeeded", Started: "2023-11-14T22:13:20Z", Finished: "2023-11-14T22:13:30Z", Attempt: 2,
			DependsOn: []string{}, Inputs: none, Outputs: []NamedValue{{Name: "x", Value: "nginx:1.27"}}, Properties: map[string]any{"image": "nginx"}},
		{ID: "b-id", Name: "b", Type: "apply", Phase: "running", Reason: "Wait", Message: "waiting for the rollout", Started: "2023-11-14T22:13:30Z",
			DependsOn: []string{"a"}, Inputs: []NamedValue{{Name: "x", Value: "nginx:1.27"}}, Outputs: none, Properties: map[string]any{}},
		{ID: "c", Name: "c", Type: "apply", Phase: "pending", DependsOn: []string{}, Inputs: []NamedValue{{Name: "x"}}, Outputs: none, Properties: map[string]any{}},
		{ID: "g", Name: "g", Type: "step-group", Phase: "pending", DependsOn: []string{}, Inputs: none, Outputs: none, Properties: map[string]any{}},
		{ID: "g1", Name: "g1", Type: "apply", Parent: "g", Phase: "pending", DependsOn: []string{}, Inputs: none, Outputs: none, Properties: map[string]any{}},
		{ID: "g2", Name: "g2", Type: "apply", Parent: "g", Phase: "pending", DependsOn: []string{"g1"}, Inputs: none, Outputs: none, Properties: map[string]any{}},
	}
	if d := cmp.Diff(wantSteps, got.Steps); d != "" {
		t.Errorf("steps (-want +got):\n%s", d)
	}
	if got.Context == nil {
		t.Error("no context object")
	}
}

// TestUIRunDetailDAG: in DAG mode only dependsOn and inputs make edges,
// and a run by workflowRef takes its steps from its Workflow.
func TestUIRunDetailDAG(t *testing.T) {
	ten := newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	a := v1alpha1.WorkflowStepBase{Name: "a", Type: "apply", Outputs: v1alpha1.StepOutputs{{Name: "x", ValueFrom: "output.x"}}}
	b := v1alpha1.WorkflowStepBase{Name: "b", Type: "apply", Inputs: v1alpha1.StepInputs{{From: "x"}}}
	c := v1alpha1.WorkflowStepBase{Name: "c", Type: "apply"}
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "wf"},
		Mode:         &v1alpha1.WorkflowExecuteMode{Steps: v1alpha1.WorkflowModeDAG},
		WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: a}, {WorkflowStepBase: b}, {WorkflowStepBase: c}}}}
	if err := env.Client.Create(context.Background(), wf); err != nil {
		t.Fatal(err)
	}
	run := uiRunObj(ten.ns, "byref", "", "", nil)
	run.Spec.WorkflowSpec, run.Spec.WorkflowRef = nil, "wf"
	inCache(t, create(t, run))
	var got RunDetail
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// The server's cache learns of the Workflow on its first read.
		if code := uiGet(t, srv.URL+"/ui/api/runs/"+ten.ns+"/byref", ten.readerTok, &got); code == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if d := cmp.Diff([]Edge{{From: "a", To: "b", Kind: EdgeInput}}, got.Edges); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
	if len(got.Steps) != 3 || got.Run.Progress != "0/3" {
		t.Errorf("steps %+v, progress %s", got.Steps, got.Run.Progress)
	}
}
