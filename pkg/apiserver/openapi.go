package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
)

// The OpenAPI document (GET /openapi.json). Its schemas are generated
// from the Go types the handlers answer with (openapi3gen), so they cannot
// drift from what the server sends: a field is required unless its JSON
// tag says omitempty or omitzero; a pointer or an interface may be null.
// Each success is the Envelope with its data's schema; each error the
// Envelope with its code (10002 for 400). The operations are the table
// in endpoints; a test walks the router and fails on a route the document
// lacks or an operation nothing routes, and the contract test checks real
// requests and responses against the document. It is built once, by New,
// and served without authentication.

// apiDoc is the document as served; err why it could not be built.
type apiDoc struct {
	json []byte
	err  error
}

func newAPIDoc() apiDoc {
	t, err := OpenAPI()
	if err != nil {
		return apiDoc{err: err}
	}
	b, err := json.Marshal(t)
	if err != nil {
		return apiDoc{err: fmt.Errorf("encoding the OpenAPI document: %w", err)}
	}
	return apiDoc{json: b}
}

// openapi is GET /openapi.json: the OpenAPI 3 document of the API.
func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	if s.doc.err != nil {
		s.out.fail(w, r, errorf(http.StatusInternalServerError, "%v", s.doc.err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.doc.json) // the client went away; nothing to tell it
}

// endpoint is an operation of the document.
type endpoint struct {
	method, path, id, summary string
	// query are its query parameters (path parameters come from path).
	query []*openapi3.Parameter
	body  *openapi3.RequestBody
	// data is the schema of the envelope's data on success; nil: the
	// operation answers something else (ok).
	data *openapi3.SchemaRef
	// ok is the success response when data is nil.
	ok *openapi3.Response
	// okStatus is the status of success; 0: 200.
	okStatus int
	// fails are the error statuses it answers, besides 500 (default).
	fails []int
	// public: no authentication.
	public bool
}

// Error statuses each authenticated call may answer, and those of a call
// on an instance or a task.
var (
	authFails     = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}
	instanceFails = append([]int{http.StatusBadRequest, http.StatusNotFound}, authFails...)
	writeFails    = append([]int{http.StatusConflict}, instanceFails...)
)

// errorResponses are the components' error responses by status: name and
// what the status means here.
var errorResponses = map[int][2]string{
	http.StatusBadRequest:            {"BadInput", "Bad input: code 10002 and a message naming the problem."},
	http.StatusUnauthorized:          {"Unauthorized", "No bearer token, or one the cluster rejects."},
	http.StatusForbidden:             {"Forbidden", "The caller may not do this in the run's namespace (SubjectAccessReview of the WorkflowRun verb: get/list to read, create to launch, update to change)."},
	http.StatusNotFound:              {"NotFound", "No such instance, task or endpoint."},
	http.StatusConflict:              {"Conflict", "The instance is not in a state that allows this (the message says its status), or the lockVersion / If-Match sent is stale."},
	http.StatusRequestEntityTooLarge: {"TooLarge", "The application configuration is larger than the server accepts."},
	http.StatusTooManyRequests:       {"TooManyRequests", "The caller's rate limit is spent (or its address's, after failed authentications); Retry-After says when to retry."},
	http.StatusNotImplemented:        {"NotImplemented", "This server cannot follow logs."},
	http.StatusServiceUnavailable:    {"Unavailable", "The server is not ready."},
}

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() (*openapi3.T, error) {
	schemas, err := generatedSchemas()
	if err != nil {
		return nil, err
	}
	ref := func(name string) *openapi3.SchemaRef {
		return openapi3.NewSchemaRef("#/components/schemas/"+name, nil)
	}
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{
			Title:   "Stepflow workflow API",
			Version: "v1",
			Description: "SREWorks appmanager's /workflow API over Stepflow's WorkflowRuns. Every response, errors included, " +
				"is the Envelope: code 200 and message SUCCESS on success; on failure code is the HTTP status, except bad input: " +
				"HTTP 400 with code 10002. An {instanceId} is the run's numeric id or namespace/name (URL-escaped); a {taskId} " +
				"is the step's position in the run (1-based, a group's sub-steps after it) or its name.",
		},
		Components: &openapi3.Components{
			Schemas:   schemas,
			Responses: openapi3.ResponseBodies{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"bearer": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().
					WithBearerFormat("a Kubernetes token (TokenReview)").
					WithDescription("A Kubernetes bearer token, checked with TokenReview; each call is authorized with SubjectAccessReview.")},
			},
		},
		Security: openapi3.SecurityRequirements{{"bearer": []string{}}},
		Paths:    openapi3.NewPaths(),
	}
	for status, r := range errorResponses {
		doc.Components.Responses[r[0]] = &openapi3.ResponseRef{Value: failure(status, r[1])}
	}
	doc.Components.Responses["Error"] = &openapi3.ResponseRef{Value: openapi3.NewResponse().
		WithDescription("An error of the server, in the Envelope.").
		WithJSONSchemaRef(ref("Envelope"))}

	for _, e := range endpoints(ref) {
		op := &openapi3.Operation{OperationID: e.id, Summary: e.summary, Responses: openapi3.NewResponses()}
		for _, name := range pathParams(e.path) {
			p := openapi3.NewPathParameter(name).WithSchema(openapi3.NewStringSchema())
			p.Description = pathParamDoc[name]
			op.AddParameter(p)
		}
		for _, q := range e.query {
			op.AddParameter(q)
		}
		if e.body != nil {
			op.RequestBody = &openapi3.RequestBodyRef{Value: e.body}
		}
		if e.public {
			op.Security = &openapi3.SecurityRequirements{}
		}
		ok := e.ok
		if e.data != nil {
			ok = openapi3.NewResponse().WithDescription("Success: the data in the Envelope.").
				WithJSONSchemaRef(enveloped(ref("Envelope"), e.data))
		}
		okStatus := e.okStatus
		if okStatus == 0 {
			okStatus = http.StatusOK
		}
		op.Responses = openapi3.NewResponses(openapi3.WithStatus(okStatus, &openapi3.ResponseRef{Value: ok}))
		op.Responses.Set("default", &openapi3.ResponseRef{Ref: "#/components/responses/Error"})
		for _, status := range e.fails {
			r, ok := errorResponses[status]
			if !ok {
				return nil, fmt.Errorf("openapi: %s %s answers %d, which has no error response", e.method, e.path, status)
			}
			op.Responses.Set(fmt.Sprint(status), &openapi3.ResponseRef{Ref: "#/components/responses/" + r[0]})
		}
		doc.AddOperation(e.path, e.method, op)
	}
	if err := addUIPaths(doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// enveloped is the Envelope whose data is data.
func enveloped(envelope, data *openapi3.SchemaRef) *openapi3.SchemaRef {
	return &openapi3.SchemaRef{Value: &openapi3.Schema{AllOf: openapi3.SchemaRefs{envelope,
		{Value: openapi3.NewObjectSchema().WithPropertyRef("data", data).WithRequired([]string{"data"})}}}}
}

// failure is the error response of status: the Envelope with that code
// (10002 for 400) and success false.
func failure(status int, description string) *openapi3.Response {
	code := status
	if status == http.StatusBadRequest {
		code = CodeBadInput
	}
	fixed := openapi3.NewObjectSchema().
		WithProperty("code", openapi3.NewIntegerSchema().WithEnum(code)).
		WithProperty("success", openapi3.NewBoolSchema().WithEnum(false))
	return openapi3.NewResponse().WithDescription(description).WithJSONSchema(&openapi3.Schema{
		AllOf: openapi3.SchemaRefs{openapi3.NewSchemaRef("#/components/schemas/Envelope", nil), {Value: fixed}},
	})
}

var pathParamDoc = map[string]string{
	"instanceId": "The instance's numeric id, or namespace/name (URL-escaped).",
	"taskId":     "The task's id (the step's position in the run, 1-based) or the step's name.",
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// pathParams are the names of path's parameters, in order.
func pathParams(path string) []string {
	var out []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	return out
}

func query(name, description string, schema *openapi3.Schema) *openapi3.Parameter {
	p := openapi3.NewQueryParameter(name).WithSchema(schema)
	p.Description = description
	return p
}

func str() *openapi3.Schema { return openapi3.NewStringSchema() }

// extMessageBody is the body of the task operations.
func extMessageBody() *openapi3.RequestBody {
	return openapi3.NewRequestBody().WithDescription("Why, recorded on the step and in an Event; the body may be left out.").
		WithJSONSchema(openapi3.NewObjectSchema().WithProperty("extMessage", str()))
}

// endpoints are the document's operations.
func endpoints(ref func(string) *openapi3.SchemaRef) []endpoint {
	namespace := query("namespace", "The namespace to act in; default: the server's.", str())
	page := query("page", "The page, from 1.", openapi3.NewIntegerSchema().WithMin(1))
	pageSize := query("pageSize", "Items a page, at most 1000; default 20.", openapi3.NewIntegerSchema().WithMin(1).WithMax(1000))
	lockVersion := query("lockVersion", "The instance's lockVersion as the caller saw it; a stale one is a 409.", openapi3.NewInt64Schema())
	ifMatch := openapi3.NewHeaderParameter("If-Match").WithSchema(str())
	ifMatch.Description = "Like lockVersion."
	instanceStates := []any{"PENDING", "RUNNING", "SUSPEND", "SUCCESS", "FAILURE", "EXCEPTION", "TERMINATED"}
	var taskEnum []any
	for _, s := range taskStates {
		taskEnum = append(taskEnum, s)
	}
	object := &openapi3.SchemaRef{Value: openapi3.NewObjectSchema()}
	command := func(name, summary string, extra ...*openapi3.Parameter) endpoint {
		return endpoint{method: http.MethodPut, path: "/workflow/{instanceId}/" + name, id: name, summary: summary,
			query: append([]*openapi3.Parameter{lockVersion, ifMatch}, extra...), data: ref("Command"), fails: writeFails}
	}
	taskOp := func(name, summary string) endpoint {
		return endpoint{method: http.MethodPut, path: "/workflow/{instanceId}/tasks/{taskId}/" + name, id: "task" + strings.ToUpper(name[:1]) + name[1:],
			summary: summary, query: []*openapi3.Parameter{lockVersion, ifMatch}, body: extMessageBody(), data: object, fails: writeFails}
	}
	taskID := query("taskId", "A task id or step name.", str())
	taskID.Required = true
	plain := func(description string) *openapi3.Response {
		return openapi3.NewResponse().WithDescription(description).WithJSONSchemaRef(enveloped(ref("Envelope"), &openapi3.SchemaRef{Value: str()}))
	}
	return []endpoint{
		{method: http.MethodGet, path: "/healthz", id: "healthz", summary: "The server is alive.", ok: plain("data is \"ok\"."), public: true},
		{method: http.MethodGet, path: "/readyz", id: "readyz", summary: "The server can answer (its cache synced).", ok: plain("data is \"ok\"."),
			fails: []int{http.StatusServiceUnavailable}, public: true},
		{method: http.MethodGet, path: "/openapi.json", id: "openapi", summary: "This document.", public: true,
			ok: openapi3.NewResponse().WithDescription("The OpenAPI 3 document (not in an Envelope).").WithJSONSchema(openapi3.NewObjectSchema())},
		{method: http.MethodPost, path: "/workflow/launch", id: "launch", summary: "Launch an ApplicationConfiguration: a WorkflowRun, created by the caller.",
			query: []*openapi3.Parameter{
				query("appId", "The app; default: the configuration's appId annotation.", str()),
				query("category", "The instance's category, e.g. DEPLOY; default DEFAULT.", str()),
				query("mode", "How the steps run: STEP_BY_STEP (default) or DAG.", str().WithEnum("STEP_BY_STEP", "DAG")),
				namespace,
			},
			body: openapi3.NewRequestBody().WithRequired(true).WithDescription("The ApplicationConfiguration (YAML).").
				WithContent(openapi3.Content{
					"application/yaml":   openapi3.NewMediaType().WithSchema(openapi3.NewObjectSchema()),
					"application/x-yaml": openapi3.NewMediaType().WithSchema(openapi3.NewObjectSchema()),
					"text/plain":         openapi3.NewMediaType().WithSchema(str()),
				}),
			data: ref("Instance"), fails: append([]int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, authFails...)},
		{method: http.MethodGet, path: "/workflow", id: "list", summary: "Instances, newest first, without workflowConfiguration and workflowContext.",
			query: []*openapi3.Parameter{
				query("instanceId", "An instance id.", str()),
				query("appId", "An app.", str()),
				query("workflowStatus", "An instance state.", str().WithEnum(instanceStates...)),
				query("workflowCreator", "The user who launched.", str()),
				query("category", "A category.", str()),
				query("labelSelector", "A Kubernetes label selector of the runs.", str()),
				namespace, page, pageSize,
			},
			data: ref("InstancePage"), fails: append([]int{http.StatusBadRequest}, authFails...)},
		{method: http.MethodGet, path: "/workflow/{instanceId}", id: "get", summary: "An instance, with workflowConfiguration and workflowContext.",
			data: ref("Instance"), fails: instanceFails},
		{method: http.MethodPut, path: "/workflow/{instanceId}/context", id: "context", summary: "Merge variables into the instance's context.",
			query: []*openapi3.Parameter{lockVersion, ifMatch},
			body: openapi3.NewRequestBody().WithRequired(true).WithJSONSchema(openapi3.NewObjectSchema().
				WithProperty("context", openapi3.NewObjectSchema().WithMinProperties(1)).WithRequired([]string{"context"})),
			data: object, fails: writeFails},
		command("resume", "Resume a suspended instance (409 if it is not suspended)."),
		command("terminate", "Terminate an instance; on a finished one, nothing happens."),
		command("retry", "Rerun a finished instance from its first task with its original configuration (409 if it is not finished)."),
		command("retryFromTask", "Rerun a finished instance from a task on, with the inputs that task had on its last attempt.", taskID),
		{method: http.MethodGet, path: "/workflow/{instanceId}/tasks", id: "tasks", summary: "The instance's tasks in the order of their ids, without taskProperties.",
			query: []*openapi3.Parameter{
				query("taskId", "A task id or step name.", str()),
				query("appId", "The instance's app (another selects none).", str()),
				query("taskType", "A step type.", str()),
				query("taskStatus", "A task state.", str().WithEnum(taskEnum...)),
				query("deployAppId", "SREWorks' app-deploy record: no Stepflow task has one, so any value selects none.", str()),
				query("deployWorkflowInstanceId", "SREWorks' started instance: no Stepflow task has one, so any value selects none.", str()),
				page, pageSize,
			},
			data: ref("TaskPage"), fails: instanceFails},
		{method: http.MethodGet, path: "/workflow/{instanceId}/tasks/{taskId}", id: "task", summary: "A task, with taskProperties.",
			data: ref("Task"), fails: instanceFails},
		taskOp("terminate", "Terminate a task."),
		taskOp("suspend", "Suspend a task: RUNNING → RUNNING_SUSPEND, WAITING → WAITING_SUSPEND."),
		taskOp("resume", "Resume a suspended task."),
		{method: http.MethodGet, path: "/workflow/{instanceId}/tasks/{taskId}/logs", id: "logs",
			summary: "A task's log lines; with follow=true a stream of Server-Sent Events: each line an event whose id is its number (send Last-Event-ID to resume), then an end or error event.",
			query:   []*openapi3.Parameter{query("follow", "Stream the lines as Server-Sent Events until the task ends.", openapi3.NewBoolSchema())},
			ok: openapi3.NewResponse().WithDescription("The lines; with follow=true, an event stream.").WithContent(openapi3.Content{
				"application/json":  openapi3.NewMediaType().WithSchemaRef(enveloped(ref("Envelope"), ref("TaskLogs"))),
				"text/event-stream": openapi3.NewMediaType().WithSchema(str()),
			}),
			fails: append([]int{http.StatusNotImplemented}, instanceFails...)},
		{method: http.MethodGet, path: "/ws/workflow/{instanceId}/tasks/{taskId}/ws-logs", id: "wsLogs",
			summary: "Follow a task's log lines over a WebSocket: a text message each line, a close with status 1000 when the task ends. " +
				"The token may come as ?access_token= where a client cannot set the Authorization header.",
			query:    []*openapi3.Parameter{query("access_token", "The bearer token, for clients that cannot set headers.", str())},
			okStatus: http.StatusSwitchingProtocols,
			ok:       openapi3.NewResponse().WithDescription("The WebSocket: a text message each log line."),
			fails:    append([]int{http.StatusNotImplemented}, instanceFails...)},
	}
}

// generatedSchemas are the components' schemas, generated from the types
// the handlers answer with.
func generatedSchemas() (openapi3.Schemas, error) {
	out := openapi3.Schemas{}
	for name, v := range map[string]any{
		"Envelope":     Envelope{},
		"Instance":     Instance{},
		"Task":         Task{},
		"Command":      Command{},
		"InstancePage": Page[Instance]{},
		"TaskPage":     Page[Task]{},
		"TaskLogs":     TaskLogs{},
	} {
		s, err := openapi3gen.NewSchemaRefForValue(v, nil, openapi3gen.SchemaCustomizer(jsonRules))
		if err != nil {
			return nil, fmt.Errorf("openapi: the schema of %s (%T): %w", name, v, err)
		}
		out[name] = s
	}
	return out, nil
}

// jsonRules makes a schema say what encoding/json does with t: a struct's
// fields are required unless their tag says omitempty or omitzero; an
// interface may be null (a pointer already may).
func jsonRules(_ string, t reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
	switch t.Kind() {
	case reflect.Interface:
		s.Nullable = true
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("json")
			if !ok || !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || name == "" {
				continue
			}
			omitted := false
			for o := range strings.SplitSeq(opts, ",") {
				omitted = omitted || o == "omitempty" || o == "omitzero"
			}
			if !omitted {
				s.Required = append(s.Required, name)
			}
		}
	}
	return nil
}
