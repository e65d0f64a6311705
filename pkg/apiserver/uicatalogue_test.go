package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// conforms checks that body is what the served document says schema is.
func conforms(t testing.TB, doc *openapi3.T, schema string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v\n%s", schema, err, body)
	}
	if err := doc.Components.Schemas[schema].Value.VisitJSON(v); err != nil {
		t.Errorf("the answer is not a %s as /openapi.json says: %v\n%s", schema, err, body)
	}
}

// uiSend is method u with tok and a JSON body: its status and body. An
// answer that is not a success must be {"error": message}.
func uiSend(t testing.TB, method, u, tok, body string) (int, []byte) {
	t.Helper()
	status, b, _ := uiRequest(t, method, u, tok, body, "")
	return status, b
}

// uiRequest is method u with tok, a JSON body (none when "") and an
// If-Match header (when set): its status, body and header. An answer that
// is not a success must be {"error": message}.
func uiRequest(t testing.TB, method, u, tok, body, ifMatch string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		var e uiError
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Fatalf("%s %s: %d without {\"error\": message}: %s", method, u, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, b, resp.Header
}

// stepDef creates a step definition in ns; with schema set, its status
// says, as the controller would, that it compiles and has that parameter
// schema; with failed set, that it does not compile.
func stepDef(t testing.TB, ns, name, description, schema, failed string) {
	t.Helper()
	ctx := context.Background()
	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Annotations: map[string]string{definition.AnnotationDescription: description}},
		Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "parameter: {}\n"}}}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	if schema == "" && failed == "" {
		return
	}
	c := metav1.Condition{Type: v1beta1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Compiled", ObservedGeneration: def.Generation}
	if failed != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "TemplateError", failed
	}
	meta.SetStatusCondition(&def.Status.Conditions, c)
	if schema != "" {
		def.Status.ParameterSchema = &runtime.RawExtension{Raw: []byte(schema)}
	}
	if err := env.Client.Status().Update(ctx, def); err != nil {
		t.Fatal(err)
	}
}

func TestUIDefinitionsCatalogue(t *testing.T) {
	ten, other := newTenant(t), newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	doc := servedDoc(t, docServer())
	ctx := context.Background()
	// The namespace's notification hides the system namespace's.
	schema := `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`
	stepDef(t, ten.ns, "notification", "the team's own notification", schema, "")
	stepDef(t, ten.ns, "broken", "", "", "line 1: undefined field")
	comp := &v1beta1.ComponentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "worker",
		Annotations: map[string]string{definition.AnnotationDescription: "a worker"}},
		Spec: v1beta1.ComponentDefinitionSpec{Schematic: &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "output: {}\n"}}}}
	if err := env.Client.Create(ctx, comp); err != nil {
		t.Fatal(err)
	}

	var list DefinitionList
	var body []byte
	eventually(t, func() bool { // until the cache has them all
		status, b := uiSend(t, http.MethodGet, srv.URL+"/ui/api/definitions?namespace="+ten.ns, ten.readerTok, "")
		if status != http.StatusOK {
			t.Fatalf("GET /ui/api/definitions: %d %s", status, b)
		}
		body, list = b, DefinitionList{}
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		return len(list.Items) > 0 && list.Items[0].Name == "worker" && strings.Contains(string(b), `"broken"`) && strings.Contains(string(b), `"to"`)
	})
	conforms(t, doc, "DefinitionList", body)
	byName := map[string]DefinitionItem{}
	var order []string
	for _, it := range list.Items {
		byName[it.Name] = it
		order = append(order, it.Kind[:1]+":"+it.Name)
	}
	// Components first, then step definitions, each by name: the shipped
	// ones and the namespace's, one notification only.
	want := []string{"C:worker", "W:apply-and-wait", "W:apply-components"}
	if d := cmp.Diff(want, order[:3]); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
	if n := strings.Count(strings.Join(order, " "), "W:notification"); n != 1 {
		t.Errorf("notification listed %d times: %v", n, order)
	}
	var gotSchema any
	if err := json.Unmarshal([]byte(schema), &gotSchema); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want DefinitionItem
	}{
		{"notification", DefinitionItem{Kind: "WorkflowStepDefinition", Name: "notification", Namespace: ten.ns, Source: "namespace",
			Description: "the team's own notification", Ready: true, Schema: gotSchema}},
		{"broken", DefinitionItem{Kind: "WorkflowStepDefinition", Name: "broken", Namespace: ten.ns, Source: "namespace",
			Message: "line 1: undefined field"}},
		// Its status is the controller's, if another test ran one.
		{"suspend", DefinitionItem{Kind: "WorkflowStepDefinition", Name: "suspend", Namespace: systemNS, Source: "system"}},
		{"worker", DefinitionItem{Kind: "ComponentDefinition", Name: "worker", Namespace: ten.ns, Source: "namespace",
			Description: "a worker", Message: "the controller has not checked this generation of the definition yet"}},
	} {
		got := byName[tc.name]
		if tc.want.Namespace == systemNS {
			got.Ready, got.Message, got.Schema = false, "", nil
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	if !strings.Contains(string(body), `"name":"worker","namespace":"`+ten.ns+`","source":"namespace","description":"a worker","ready":false,"message":"the controller has not checked this generation of the definition yet","schema":null`) {
		t.Errorf("a component's schema is not null: %s", body)
	}

	// Another namespace's runs see the system notification, not this one.
	var theirs DefinitionList
	if status := uiGet(t, srv.URL+"/ui/api/definitions?namespace="+other.ns, other.readerTok, &theirs); status != http.StatusOK {
		t.Fatalf("GET /ui/api/definitions of %s: %d", other.ns, status)
	}
	for _, it := range theirs.Items {
		if it.Namespace != systemNS || it.Source != "system" {
			t.Errorf("%s sees %s/%s (%s)", other.ns, it.Namespace, it.Name, it.Source)
		}
	}
	// Only who may list runs of the namespace; the system namespace's
	// alone (no namespace) needs that right there.
	for _, u := range []string{"/ui/api/definitions?namespace=" + ten.ns, "/ui/api/definitions"} {
		if status := uiGet(t, srv.URL+u, other.readerTok, nil); status != http.StatusForbidden {
			t.Errorf("GET %s by another tenant: %d, want 403", u, status)
		}
	}
	if status := uiGet(t, srv.URL+"/ui/api/definitions?namespace=Bad_NS", ten.readerTok, nil); status != http.StatusBadRequest {
		t.Errorf("a bad namespace: %d, want 400", status)
	}
}

func TestUIWorkflows(t *testing.T) {
	ten, other := newTenant(t), newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	doc := servedDoc(t, docServer())
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "release",
		Annotations: map[string]string{definition.AnnotationDescription: "ships it"}},
		WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "wait", Type: "suspend"}},
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "tell", Type: "notification"}},
		}}}
	hidden := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: other.ns, Name: "theirs"},
		WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "wait", Type: "suspend"}}}}}
	for _, o := range []client.Object{wf, hidden} {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	want := []WorkflowItem{{Namespace: ten.ns, Name: "release", Description: "ships it", Steps: 2}}
	for _, q := range []string{"?namespace=" + ten.ns, ""} {
		var got WorkflowList
		var body []byte
		eventually(t, func() bool {
			status, b := uiSend(t, http.MethodGet, srv.URL+"/ui/api/workflows"+q, ten.readerTok, "")
			if status != http.StatusOK {
				t.Fatalf("GET /ui/api/workflows%s: %d %s", q, status, b)
			}
			body, got = b, WorkflowList{}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			return len(got.Items) > 0
		})
		// Without a namespace: only those of namespaces the caller may list.
		if d := cmp.Diff(want, got.Items); d != "" {
			t.Errorf("GET /ui/api/workflows%s (-want +got):\n%s", q, d)
		}
		conforms(t, doc, "WorkflowList", body)
	}
	if status := uiGet(t, srv.URL+"/ui/api/workflows?namespace="+ten.ns, other.readerTok, nil); status != http.StatusForbidden {
		t.Errorf("another tenant: %d, want 403", status)
	}
}

// runsIn are the runs of ns, read from the API server.
func runsIn(t testing.TB, ns string) []v1alpha1.WorkflowRun {
	t.Helper()
	var l v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestUILaunch(t *testing.T) {
	ten := newTenant(t)
	srv, _ := serveUI(t, ten.ns, func(o *Options) { o.Events = conn.GetEventRecorderFor("stepflow-server") })
	doc := servedDoc(t, docServer())
	ctx := context.Background()
	creator := "system:serviceaccount:" + usersNS + ":launcher-" + strings.TrimPrefix(ten.ns, "tenant-")
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "release"},
		WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "wait", Type: "suspend"}},
			{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "tell", Type: "notification"}},
		}}}
	if err := env.Client.Create(ctx, wf); err != nil {
		t.Fatal(err)
	}
	// Launched at once: the Workflow is read from the API server, not
	// the cache that may not have it yet.

	// Refused: nothing is created.
	for _, tc := range []struct {
		name, tok, body string
		status          int
		says            string
	}{
		{"unknown step type", ten.launchTok, `{"namespace":"` + ten.ns + `","definition":"notificaton"}`, 400, `unknown step type "notificaton"`},
		{"unknown workflow", ten.launchTok, `{"namespace":"` + ten.ns + `","workflow":"relase"}`, 400, "workflow " + ten.ns + "/relase does not exist"},
		{"a reader may not launch", ten.readerTok, `{"namespace":"` + ten.ns + `","definition":"suspend"}`, 403, "create"},
		{"not JSON", ten.launchTok, `{"definition":`, 400, "not a JSON object"},
		{"an unknown field", ten.launchTok, `{"definition":"suspend","parameters":{}}`, 400, "parameters"},
		{"neither", ten.launchTok, `{"namespace":"` + ten.ns + `"}`, 400, "a definition (a one-step run) or a workflow"},
		{"both", ten.launchTok, `{"definition":"suspend","workflow":"release"}`, 400, "one of them"},
		{"properties of a workflow", ten.launchTok, `{"workflow":"release","properties":{"a":1}}`, 400, "properties go with a definition"},
		{"a bad name", ten.launchTok, `{"definition":"suspend","name":"Not_A_Name"}`, 400, "Not_A_Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := uiSend(t, http.MethodPost, srv.URL+"/ui/api/runs", tc.tok, tc.body)
			var e uiError
			_ = json.Unmarshal(b, &e) // uiSend checked it
			if status != tc.status || !strings.Contains(e.Error, tc.says) {
				t.Errorf("%d %s, want %d saying %q", status, b, tc.status, tc.says)
			}
		})
	}
	if runs := runsIn(t, ten.ns); len(runs) != 0 {
		t.Fatalf("refused launches created %d runs", len(runs))
	}

	launch := func(body string) *v1alpha1.WorkflowRun {
		t.Helper()
		status, b := uiSend(t, http.MethodPost, srv.URL+"/ui/api/runs", ten.launchTok, body)
		if status != http.StatusCreated {
			t.Fatalf("POST /ui/api/runs %s: %d %s, want 201", body, status, b)
		}
		conforms(t, doc, "Launched", b)
		var got Launched
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		var run v1alpha1.WorkflowRun
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: got.Run.Namespace, Name: got.Run.Name}, &run); err != nil {
			t.Fatalf("the run launched, %s/%s: %v", got.Run.Namespace, got.Run.Name, err)
		}
		if got.Run.UID != string(run.UID) || got.Run.Phase != "pending" {
			t.Errorf("answered %+v for run %s", got.Run, run.UID)
		}
		if run.Annotations[app.AnnotationCreator] != creator {
			t.Errorf("creator annotation %q, want %q", run.Annotations[app.AnnotationCreator], creator)
		}
		return &run
	}

	// One step of a definition, named after its type, the namespace the
	// server's.
	one := launch(`{"definition":"notification","properties":{"to":"ops","n":2}}`)
	if one.Namespace != ten.ns || !strings.HasPrefix(one.Name, "notification-") {
		t.Errorf("one-step run %s/%s", one.Namespace, one.Name)
	}
	steps := one.Spec.WorkflowSpec.Steps
	if len(steps) != 1 || steps[0].Name != "notification" || steps[0].Type != "notification" ||
		steps[0].Properties == nil || string(steps[0].Properties.Raw) != `{"n":2,"to":"ops"}` {
		t.Errorf("one-step run's steps: %+v", steps)
	}

	// A run of the Workflow with its context, named.
	run := launch(`{"namespace":"` + ten.ns + `","workflow":"release","context":{"env":{"name":"prod"},"replicas":3},"name":"release-v2"}`)
	if run.Name != "release-v2" || run.Spec.WorkflowRef != "release" || run.Spec.WorkflowSpec != nil ||
		run.Spec.Context == nil || string(run.Spec.Context.Raw) != `{"env":{"name":"prod"},"replicas":3}` {
		t.Errorf("workflow run %s: %+v", run.Name, run.Spec)
	}

	// Each launch is audited: an Event on the run names the user.
	for _, r := range []*v1alpha1.WorkflowRun{one, run} {
		eventually(t, func() bool {
			var evs corev1.EventList
			if err := env.Client.List(ctx, &evs, client.InNamespace(ten.ns)); err != nil {
				t.Fatal(err)
			}
			for _, e := range evs.Items {
				if e.InvolvedObject.Name == r.Name && e.Reason == "Launched" && strings.Contains(e.Message, "launched by "+creator+" through the UI") {
					return true
				}
			}
			return false
		})
	}
}

// TestUILaunchedRunsRun: what a launch makes is a run the controller runs
// as asked, the step's properties and the Workflow run's context reaching
// the templates.
func TestUILaunchedRunsRun(t *testing.T) {
	ten := newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	ctx := context.Background()
	sayEnv := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "say-env"},
		Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: `import "vela/builtin"

msg: builtin.#Message & {$params: message: "env is \(context.env)"}
parameter: {}
`}}}}
	wf := &v1alpha1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ten.ns, Name: "greet"},
		WorkflowSpec: v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "say", Type: "say-env"}}}}}
	for _, o := range []client.Object{sayEnv, wf} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	startOpsController(t)
	for _, tc := range []struct{ body, step, message string }{
		{`{"definition":"print-message-in-status","properties":{"message":"from the UI"}}`, "print-message-in-status", "from the UI"},
		{`{"workflow":"greet","context":{"env":"prod"}}`, "say", "env is prod"},
	} {
		status, b := uiSend(t, http.MethodPost, srv.URL+"/ui/api/runs", ten.launchTok, tc.body)
		if status != http.StatusCreated {
			t.Fatalf("POST /ui/api/runs %s: %d %s", tc.body, status, b)
		}
		var got Launched
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		key := client.ObjectKey{Namespace: got.Run.Namespace, Name: got.Run.Name}
		var run v1alpha1.WorkflowRun
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := env.Client.Get(ctx, key, &run); err != nil {
				t.Fatal(err)
			}
			if run.Status.Finished || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if run.Status.Phase != v1alpha1.WorkflowRunSucceeded || len(run.Status.Steps) != 1 ||
			run.Status.Steps[0].Name != tc.step || run.Status.Steps[0].Message != tc.message {
			t.Errorf("run %s of %s: %s (%s), steps %+v; want succeeded, step %s saying %q",
				key, tc.body, run.Status.Phase, run.Status.Message, run.Status.Steps, tc.step, tc.message)
		}
	}
}
