package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
)

// servedDoc is the document GET /openapi.json answers (without a token),
// loaded and validated by kin-openapi.
func servedDoc(t testing.TB, h http.Handler) *openapi3.T {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("loading /openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// docServer is the API with a token-less authenticator that refuses
// everything, so only public endpoints answer.
func docServer() http.Handler {
	return New(Options{Auth: refuseAll{}, Namespace: "default"})
}

type refuseAll struct{ Anonymous }

func (refuseAll) Authenticate(*http.Request) (User, error) {
	return User{}, errorf(http.StatusUnauthorized, "no")
}

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc := servedDoc(t, docServer())
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	if ss := doc.Components.SecuritySchemes["bearer"]; ss == nil || ss.Value.Type != "http" || ss.Value.Scheme != "bearer" {
		t.Errorf("no bearer security scheme: %+v", ss)
	}
	for _, name := range []string{"Envelope", "Instance", "Task", "Command", "InstancePage", "TaskPage", "TaskLogs"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
	// Each operation says what it answers, and errors are envelopes with
	// their code: 10002 for bad input, the status otherwise.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			want := []string{"200", "default"}
			switch op.OperationID {
			case "wsLogs":
				want[0] = "101" // Switching Protocols
			case "uiLaunch":
				want[0] = "201" // Created
			}
			if !public {
				want = append(want, "401", "403", "429")
			}
			if strings.Contains(path, "{instanceId}") {
				want = append(want, "404", "400")
			}
			if method == http.MethodPut {
				want = append(want, "409")
			}
			for _, status := range want {
				if op.Responses.Value(status) == nil {
					t.Errorf("%s %s does not document its %s response", method, path, status)
				}
			}
		}
	}
	for status, code := range map[string]float64{"BadInput": CodeBadInput, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404, "Conflict": 409, "TooManyRequests": 429} {
		body := map[string]any{"code": code, "success": false, "message": "m", "requestId": "r", "timestamp": 1.0, "data": nil}
		s := doc.Components.Responses[status].Value.Content.Get("application/json").Schema.Value
		if err := s.VisitJSON(body); err != nil {
			t.Errorf("%s: an error envelope with code %v does not validate: %v", status, code, err)
		}
		body["code"] = 500.0
		if s.VisitJSON(body) == nil {
			t.Errorf("%s: an envelope with code 500 validates", status)
		}
	}
}

// TestOpenAPICoversEveryRoute: every route of the router is in the
// document and every operation of the document is routed, so an endpoint
// added without its documentation (or documentation of no endpoint) fails
// here.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	h := docServer()
	doc := servedDoc(t, h)
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("New returned a %T, not a chi router", h)
	}
	var routed []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route != "/" {
			route = strings.TrimSuffix(route, "/") // /workflow/ is GET /workflow
		}
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is routed but not in /openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("%s is in /openapi.json but not routed", d)
		}
	}
	// Sanity: the endpoints are all there.
	for _, want := range []string{
		"POST /workflow/launch", "GET /workflow", "GET /workflow/{instanceId}", "PUT /workflow/{instanceId}/context",
		"PUT /workflow/{instanceId}/resume", "PUT /workflow/{instanceId}/terminate", "PUT /workflow/{instanceId}/retry",
		"PUT /workflow/{instanceId}/retryFromTask", "GET /workflow/{instanceId}/tasks", "GET /workflow/{instanceId}/tasks/{taskId}",
		"PUT /workflow/{instanceId}/tasks/{taskId}/terminate", "PUT /workflow/{instanceId}/tasks/{taskId}/suspend",
		"PUT /workflow/{instanceId}/tasks/{taskId}/resume", "GET /workflow/{instanceId}/tasks/{taskId}/logs",
		"GET /ws/workflow/{instanceId}/tasks/{taskId}/ws-logs", "GET /healthz", "GET /readyz", "GET /openapi.json",
	} {
		if !slices.Contains(documented, want) {
			t.Errorf("/openapi.json lacks %s", want)
		}
	}
}

// TestOpenAPISchemasFollowTheGoTypes: what encoding/json makes of each
// type the handlers answer with validates against its generated schema,
// with its pointers nil and set, and a value missing a field that is
// never left out does not.
func TestOpenAPISchemasFollowTheGoTypes(t *testing.T) {
	schemas, err := generatedSchemas()
	if err != nil {
		t.Fatal(err)
	}
	ms := int64(1700000000000)
	conf := "apiVersion: core.oam.dev/v1alpha2\n"
	id := int64(7)
	full := Instance{ID: 1, GmtStart: &ms, GmtEnd: &ms, WorkflowConfiguration: &conf, WorkflowContext: map[string]any{"a": nil, "b": true}}
	for _, tc := range []struct {
		schema string
		value  any
	}{
		{"Instance", Instance{}},
		{"Instance", full},
		{"Task", Task{}},
		{"Task", Task{GmtStart: &ms, DeployAppID: &id, TaskProperties: map[string]any{"x": []any{1}}, Parent: "g"}},
		{"Command", Command{Command: "RESUME"}},
		{"InstancePage", Page[Instance]{Items: []Instance{full}}},
		{"TaskPage", Page[Task]{Items: []Task{}}},
		{"TaskLogs", TaskLogs{Lines: []string{"a"}}},
		{"Envelope", Envelope{}},
		{"Envelope", Envelope{Data: full}},
	} {
		b, err := json.Marshal(tc.value)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if err := schemas[tc.schema].Value.VisitJSON(v); err != nil {
			t.Errorf("%s %s does not validate: %v", tc.schema, b, err)
		}
	}
	for schema, field := range map[string]string{"Instance": "gmtStart", "Task": "deployAppId", "Envelope": "data", "Command": "success"} {
		s := schemas[schema].Value
		if !slices.Contains(s.Required, field) {
			t.Errorf("%s: %s is not required (required: %v)", schema, field, s.Required)
		}
	}
	for schema, field := range map[string]string{"Instance": "workflowConfiguration", "Task": "taskProperties"} {
		if slices.Contains(schemas[schema].Value.Required, field) {
			t.Errorf("%s: %s, left out of lists, is required", schema, field)
		}
	}
	var noStatus map[string]any
	b, _ := json.Marshal(Instance{})
	_ = json.Unmarshal(b, &noStatus)
	delete(noStatus, "workflowStatus")
	if schemas["Instance"].Value.VisitJSON(noStatus) == nil {
		t.Error("an instance without workflowStatus validates")
	}
}
