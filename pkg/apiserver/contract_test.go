package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// The contract test: SREWorks' example requests (testdata/contract, from
// the reference), sent verbatim over real HTTP; every field the reference
// lists for instances, tasks and command results present with its JSON
// type; and every request and response checked against /openapi.json.

// JSON types, as the reference allows them.
const (
	jNumber = "number"
	jString = "string"
	jObject = "object"
	jArray  = "array"
	jBool   = "bool"
	jNull   = "null"
)

// The reference's fields (§2) and the JSON types each may have. Times
// not reached yet (gmtStart, gmtEnd) and a task's deploy record are null.
var (
	envelopeFields = map[string][]string{
		"code": {jNumber}, "success": {jBool}, "message": {jString}, "requestId": {jString}, "timestamp": {jNumber},
	}
	pageFields = map[string][]string{
		"page": {jNumber}, "pageSize": {jNumber}, "total": {jNumber}, "items": {jArray}, "empty": {jBool},
	}
	// instanceFields are an instance's in a list; GET and launch add
	// instanceBlobs.
	instanceFields = map[string][]string{
		"id": {jNumber}, "gmtCreate": {jNumber}, "gmtModified": {jNumber}, "appId": {jString}, "category": {jString},
		"gmtStart": {jNumber, jNull}, "gmtEnd": {jNumber, jNull}, "workflowStatus": {jString},
		"workflowErrorMessage": {jString, jNull}, "workflowSha256": {jString}, "workflowOptions": {jObject},
		"workflowCreator": {jString}, "lockVersion": {jNumber},
	}
	instanceBlobs  = map[string][]string{"workflowConfiguration": {jString}, "workflowContext": {jObject}}
	optionsFields  = map[string][]string{"creator": {jString}, "category": {jString}}
	instanceStates = []string{"PENDING", "PREPROCESSING", "RUNNING", "SUSPEND", "SUCCESS", "FAILURE", "EXCEPTION", "TERMINATED"}
	// taskFields are a task's in a list; GET adds taskBlobs.
	taskFields = map[string][]string{
		"id": {jNumber}, "gmtCreate": {jNumber}, "gmtModified": {jNumber}, "batchId": {jNumber}, "workflowInstanceId": {jNumber},
		"appId": {jString}, "gmtStart": {jNumber, jNull}, "gmtEnd": {jNumber, jNull}, "taskType": {jString}, "taskStage": {jString},
		"taskStatus": {jString}, "clientHostname": {jString}, "deployAppId": {jNumber, jNull}, "deployAppUnitId": {jString, jNull},
		"deployAppNamespaceId": {jString, jNull}, "deployAppStageId": {jString, jNull}, "lockVersion": {jNumber},
		"taskErrorMessage": {jString, jNull},
	}
	taskBlobs     = map[string][]string{"taskProperties": {jObject}}
	taskStatesRef = []string{"PENDING", "RUNNING", "WAITING", "RUNNING_SUSPEND", "WAITING_SUSPEND", "SUCCESS", "FAILURE", "EXCEPTION", "TERMINATED"}
	commandFields = map[string][]string{
		"command": {jString}, "workflowInstanceId": {jNumber}, "clientHost": {jString}, "success": {jBool}, "message": {jString},
	}
)

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return jNull
	case bool:
		return jBool
	case float64:
		return jNumber
	case string:
		return jString
	case []any:
		return jArray
	case map[string]any:
		return jObject
	}
	return fmt.Sprintf("%T", v)
}

// hasFields checks that obj has each field of each table with one of its
// types.
func hasFields(t *testing.T, what string, obj any, tables ...map[string][]string) map[string]any {
	t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		t.Fatalf("%s: %s, not an object: %v", what, jsonType(obj), obj)
	}
	for _, table := range tables {
		for field, types := range table {
			v, ok := m[field]
			if !ok {
				t.Errorf("%s has no %s", what, field)
				continue
			}
			if !slices.Contains(types, jsonType(v)) {
				t.Errorf("%s.%s is %s (%v), want %s", what, field, jsonType(v), v, strings.Join(types, " or "))
			}
		}
	}
	return m
}

// contract is a client of the API that checks each request and each
// response against the document the server serves.
type contract struct {
	base   string
	router routers.Router
}

func newContract(t *testing.T, srv *httptest.Server) *contract {
	t.Helper()
	doc := servedDoc(t, srv.Config.Handler)
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing /openapi.json: %v", err)
	}
	return &contract{base: srv.URL, router: router}
}

// reference is the body of a reference request in testdata/contract.
func reference(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "contract", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends a request that the document accepts, checks the response
// against the document, and returns its status and envelope. contentType
// "" sends no body.
func (c *contract) do(t *testing.T, method, path, tok, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	return c.send(t, true, method, path, tok, contentType, body)
}

// bad sends a request the document refuses (a 400 case) and checks the
// response against the document.
func (c *contract) bad(t *testing.T, method, path, tok, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	return c.send(t, false, method, path, tok, contentType, body)
}

func (c *contract) send(t *testing.T, valid bool, method, path, tok, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	ctx := context.Background()
	newReq := func() *http.Request {
		req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return req
	}
	checked := newReq()
	route, params, err := c.router.FindRoute(checked)
	if err != nil {
		t.Fatalf("%s %s is not in /openapi.json: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: checked, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	err = openapi3filter.ValidateRequest(ctx, in)
	if valid && err != nil {
		t.Errorf("%s %s: /openapi.json refuses the request: %v", method, path, err)
	}
	if !valid && err == nil {
		t.Errorf("%s %s: /openapi.json accepts a request the server must refuse", method, path)
	}

	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("%s %s answered %d, which /openapi.json does not document: %s", method, path, resp.StatusCode, b)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(b)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s: the %d response does not match /openapi.json: %v\n%s", method, path, resp.StatusCode, err, b)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v\n%s", method, path, resp.StatusCode, err, b)
	}
	hasFields(t, method+" "+path+": the envelope", env, envelopeFields, map[string][]string{"data": {jNull, jObject, jArray, jString, jNumber, jBool}})
	return resp.StatusCode, env
}

// stream GETs path, a stream the document accepts, and checks that the
// answer is 200 with a media type the document gives for it; it returns
// the body, read to its end.
func (c *contract) stream(t *testing.T, path, tok string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("GET %s is not in /openapi.json: %v", path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("GET %s: /openapi.json refuses the request: %v", path, err)
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
	media, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	ok := route.Operation.Responses.Status(resp.StatusCode)
	if resp.StatusCode != http.StatusOK || ok == nil || ok.Value.Content.Get(media) == nil {
		t.Fatalf("GET %s: %d %s, not a stream /openapi.json documents: %s", path, resp.StatusCode, media, b)
	}
	return string(b)
}

// websocket opens the WebSocket at path, which the document must route
// with a 101 response, and reads its messages until the server closes
// it; it returns the close status.
func (c *contract) websocket(t *testing.T, path, tok string) websocket.StatusCode {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	route, _, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("GET %s is not in /openapi.json: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+path,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatalf("WebSocket %s: %v", path, err)
	}
	defer conn.CloseNow()
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("WebSocket %s answered %d, which /openapi.json does not document", path, resp.StatusCode)
	}
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// wantStatus fails unless the answer was status with its envelope code.
func wantStatus(t *testing.T, what string, status int, env map[string]any, wantHTTP, wantCode int) {
	t.Helper()
	if status != wantHTTP || env["code"] != float64(wantCode) || env["success"] != (wantHTTP == http.StatusOK) {
		t.Fatalf("%s: HTTP %d, code %v, success %v (%v); want HTTP %d, code %d", what, status, env["code"], env["success"], env["message"], wantHTTP, wantCode)
	}
	if wantHTTP == http.StatusOK && env["message"] != "SUCCESS" {
		t.Errorf("%s: message %v, want SUCCESS", what, env["message"])
	}
}

// suspendAtThirdStep writes the run's status as the controller does when
// the gray release reaches its suspend step: the first two steps
// succeeded, the third suspending.
func suspendAtThirdStep(t *testing.T, run *v1alpha1.WorkflowRun) {
	t.Helper()
	setSteps(t, run,
		step("apply-components-1", "apply-components", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000001, 1700000002),
		step("apply-components-2", "apply-components", v1alpha1.WorkflowStepPhaseSucceeded, "", 1700000003, 1700000004),
		step("suspend-3", "suspend", v1alpha1.WorkflowStepPhaseSuspending, "", 1700000005, 1700000005))
	ctx := context.Background()
	run.Status.Phase = v1alpha1.WorkflowRunSuspending
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		var cached v1alpha1.WorkflowRun
		return conn.GetClient().Get(ctx, client.ObjectKeyFromObject(run), &cached) == nil &&
			cached.ResourceVersion == run.ResourceVersion
	})
}

// TestContract runs the phases of one instance's life in order, each a
// subtest, so a phase that fails says which part of the contract broke
// and the next still runs.
func TestContract(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	c := newContract(t, srv)
	gray := reference(t, "gray-release.yaml")

	// Launch: the reference's gray-release body, as YAML.
	status, rep := c.do(t, http.MethodPost, "/workflow/launch?appId=testapp&category=DEPLOY", ten.launchTok, "application/yaml", gray)
	wantStatus(t, "launch", status, rep, http.StatusOK, http.StatusOK)
	launched := hasFields(t, "the launched instance", rep["data"], instanceFields, instanceBlobs)
	hasFields(t, "the launched instance's workflowOptions", launched["workflowOptions"], optionsFields)
	if launched["workflowConfiguration"] != string(gray) || launched["category"] != "DEPLOY" || launched["appId"] != "testapp" {
		t.Errorf("launched: configuration verbatim %v, category %v, appId %v",
			launched["workflowConfiguration"] == string(gray), launched["category"], launched["appId"])
	}
	id := fmt.Sprint(int64(launched["id"].(float64)))
	instance := "/workflow/" + id
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ten.ns, Name: launched["name"].(string)}, &run); err != nil {
		t.Fatal(err)
	}

	t.Run("get and list", func(t *testing.T) {
		// Once the server's cache has it.
		var status int
		var rep map[string]any
		eventually(t, func() bool {
			status, rep = c.do(t, http.MethodGet, instance, ten.readerTok, "", nil)
			return status == http.StatusOK
		})
		got := hasFields(t, "GET "+instance, rep["data"], instanceFields, instanceBlobs)
		if !slices.Contains(instanceStates, got["workflowStatus"].(string)) {
			t.Errorf("workflowStatus %v is not an instance state", got["workflowStatus"])
		}
		status, rep = c.do(t, http.MethodGet, "/workflow?appId=testapp&page=1&pageSize=10", ten.readerTok, "", nil)
		wantStatus(t, "list", status, rep, http.StatusOK, http.StatusOK)
		page := hasFields(t, "the list", rep["data"], pageFields)
		items := page["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("list: %d items, want 1", len(items))
		}
		item := hasFields(t, "a listed instance", items[0], instanceFields)
		hasFields(t, "a listed instance's workflowOptions", item["workflowOptions"], optionsFields)
	})

	t.Run("resume of a pending instance is 409", func(t *testing.T) {
		status, rep := c.do(t, http.MethodPut, instance+"/resume", ten.launchTok, "", nil)
		wantStatus(t, "resume", status, rep, http.StatusConflict, http.StatusConflict)
	})

	suspendAtThirdStep(t, &run)

	t.Run("context", func(t *testing.T) {
		// The reference's three context bodies, each merged into the
		// context.
		for _, name := range []string{"context-continue.json", "context-rollback.json", "context-stop.json"} {
			body := reference(t, name)
			status, rep := c.do(t, http.MethodPut, instance+"/context", ten.launchTok, "application/json", body)
			wantStatus(t, "PUT context "+name, status, rep, http.StatusOK, http.StatusOK)
			hasFields(t, "PUT context "+name, rep["data"])
			var sent struct{ Context map[string]any }
			if err := json.Unmarshal(body, &sent); err != nil {
				t.Fatal(err)
			}
			eventually(t, func() bool {
				_, rep := c.do(t, http.MethodGet, instance, ten.readerTok, "", nil)
				data, _ := rep["data"].(map[string]any)
				ctx, _ := data["workflowContext"].(map[string]any)
				for k, v := range sent.Context {
					if ctx[k] != v {
						return false
					}
				}
				return true
			})
		}
		status, rep := c.bad(t, http.MethodPut, instance+"/context", ten.launchTok, "application/json", []byte(`{"context": {}}`))
		wantStatus(t, "an empty context", status, rep, http.StatusBadRequest, CodeBadInput)
	})

	t.Run("tasks", func(t *testing.T) {
		// The list without taskProperties, each task with them.
		status, rep := c.do(t, http.MethodGet, instance+"/tasks", ten.readerTok, "", nil)
		wantStatus(t, "tasks", status, rep, http.StatusOK, http.StatusOK)
		page := hasFields(t, "the tasks", rep["data"], pageFields)
		items := page["items"].([]any)
		if len(items) != 5 {
			t.Fatalf("the gray release has %d tasks, want 5", len(items))
		}
		for i, it := range items {
			task := hasFields(t, fmt.Sprintf("listed task %d", i+1), it, taskFields)
			if !slices.Contains(taskStatesRef, task["taskStatus"].(string)) {
				t.Errorf("task %d: taskStatus %v is not a task state", i+1, task["taskStatus"])
			}
			tid := fmt.Sprint(int64(task["id"].(float64)))
			status, rep = c.do(t, http.MethodGet, instance+"/tasks/"+tid, ten.readerTok, "", nil)
			wantStatus(t, "task "+tid, status, rep, http.StatusOK, http.StatusOK)
			hasFields(t, "task "+tid, rep["data"], taskFields, taskBlobs)
		}
		if first := items[0].(map[string]any); jsonType(first["gmtStart"]) != jNumber {
			t.Errorf("task 1 started, but its gmtStart is %v", first["gmtStart"])
		}
		status, rep = c.do(t, http.MethodGet, instance+"/tasks/99", ten.readerTok, "", nil)
		wantStatus(t, "a task not in the instance", status, rep, http.StatusNotFound, http.StatusNotFound)
	})

	t.Run("logs", func(t *testing.T) {
		status, rep := c.do(t, http.MethodGet, instance+"/tasks/1/logs", ten.readerTok, "", nil)
		wantStatus(t, "logs", status, rep, http.StatusOK, http.StatusOK)
		hasFields(t, "logs", rep["data"], map[string][]string{
			"workflowInstanceId": {jNumber}, "taskId": {jNumber}, "name": {jString}, "taskStatus": {jString}, "lines": {jArray},
		})
		// Followed, as Server-Sent Events: task 1 is finished, so the
		// stream ends at once with its end event.
		if got := c.stream(t, instance+"/tasks/1/logs?follow=true", ten.readerTok); !strings.Contains(got, "event: end\n") {
			t.Errorf("the followed logs of a finished task have no end event:\n%s", got)
		}
		// Followed over the WebSocket: closed normally at once.
		if code := c.websocket(t, "/ws"+instance+"/tasks/1/ws-logs", ten.readerTok); code != websocket.StatusNormalClosure {
			t.Errorf("the WebSocket of a finished task's logs closed with %v, want %v", code, websocket.StatusNormalClosure)
		}
	})

	t.Run("task operations", func(t *testing.T) {
		// With their extMessage body; task 3 (the suspend step) ends
		// suspended again, so the instance is still SUSPEND.
		for _, op := range []string{"tasks/3/resume", "tasks/3/suspend", "tasks/5/terminate"} {
			status, rep := c.do(t, http.MethodPut, instance+"/"+op, ten.launchTok, "application/json", []byte(`{"extMessage": "contract test"}`))
			wantStatus(t, op, status, rep, http.StatusOK, http.StatusOK)
			hasFields(t, op, rep["data"])
		}
	})

	t.Run("instance operations", func(t *testing.T) {
		// Their command results.
		command := func(op, name string) {
			t.Helper()
			status, rep := c.do(t, http.MethodPut, instance+"/"+op, ten.launchTok, "", nil)
			wantStatus(t, op, status, rep, http.StatusOK, http.StatusOK)
			res := hasFields(t, op+"'s result", rep["data"], commandFields)
			if res["command"] != name || res["workflowInstanceId"] != launched["id"] || res["success"] != true {
				t.Errorf("%s: %v", op, res)
			}
		}
		command("resume", "RESUME")
		// Resumed, not yet acted on by a controller (none runs here): a
		// second resume is refused, not silently done again.
		status, rep := c.do(t, http.MethodPut, instance+"/resume", ten.launchTok, "", nil)
		wantStatus(t, "a second resume", status, rep, http.StatusConflict, http.StatusConflict)
		command("terminate", "TERMINATE")
		command("terminate", "TERMINATE") // a finished instance: no effect, still 200
		command("retry", "RETRY")
		command("terminate", "TERMINATE")
		command("retryFromTask?taskId=2", "RETRY_FROM_TASK")
		status, rep = c.do(t, http.MethodPut, instance+"/terminate", ten.readerTok, "", nil)
		wantStatus(t, "the reader terminates", status, rep, http.StatusForbidden, http.StatusForbidden)
		status, rep = c.do(t, http.MethodPut, "/workflow/999999999/retry", ten.launchTok, "", nil)
		wantStatus(t, "retry of an unknown instance", status, rep, http.StatusNotFound, http.StatusNotFound)
	})

	t.Run("errors", func(t *testing.T) {
		status, rep := c.do(t, http.MethodGet, "/workflow", "", "", nil)
		wantStatus(t, "no token", status, rep, http.StatusUnauthorized, http.StatusUnauthorized)
		status, rep = c.do(t, http.MethodGet, "/workflow/999999999", ten.readerTok, "", nil)
		wantStatus(t, "an unknown instance", status, rep, http.StatusNotFound, http.StatusNotFound)
		status, rep = c.bad(t, http.MethodGet, "/workflow?pageSize=0", ten.readerTok, "", nil)
		wantStatus(t, "pageSize 0", status, rep, http.StatusBadRequest, CodeBadInput)
		big := append(append([]byte{}, gray...), "# "+strings.Repeat("x", app.MaxConfigurationSize)+"\n"...)
		status, rep = c.do(t, http.MethodPost, "/workflow/launch?appId=testapp", ten.launchTok, "application/yaml", big)
		wantStatus(t, "a configuration too large", status, rep, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge)

		// A user over their rate limit.
		limited := httptest.NewServer(New(Options{Client: conn.GetClient(), Auth: Anonymous{Name: "local"}, Namespace: ten.ns, RateLimit: 0.001, Burst: 1}))
		defer limited.Close()
		lc := newContract(t, limited)
		status, rep = lc.do(t, http.MethodGet, "/workflow", "", "", nil)
		wantStatus(t, "the first call", status, rep, http.StatusOK, http.StatusOK)
		status, rep = lc.do(t, http.MethodGet, "/workflow", "", "", nil)
		wantStatus(t, "a call over the rate limit", status, rep, http.StatusTooManyRequests, http.StatusTooManyRequests)
	})
}
