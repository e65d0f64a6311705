package apiserver

import (
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
)

// addUIPaths documents the UI's API (ui.go, uievents.go): its schemas,
// generated from the Go types as the rest, and its operations, whose
// errors are {"error": message}, not the Envelope.
func addUIPaths(doc *openapi3.T) error {
	ref := func(name string) *openapi3.SchemaRef {
		return openapi3.NewSchemaRef("#/components/schemas/"+name, nil)
	}
	for name, v := range map[string]any{
		"RunSummary": RunSummary{}, "RunList": RunList{}, "RunDetail": RunDetail{},
		"StepNode": StepNode{}, "Edge": Edge{}, "UIError": uiError{},
		"Actions": Actions{}, "ActionResult": ActionResult{}, "ActionBody": ActionBody{},
		"StepDetail": StepDetail{}, "Attempt": Attempt{}, "OpCall": OpCall{}, "LogLine": LogLine{},
		"DefinitionSource": DefinitionSource{}, "LogEnd": LogEnd{},
		"DefinitionItem": DefinitionItem{}, "DefinitionList": DefinitionList{}, "WorkflowItem": WorkflowItem{},
		"WorkflowList": WorkflowList{}, "LaunchRequest": LaunchRequest{}, "Launched": Launched{},
		"RunRef": RunRef{}, "Deploys": Deploys{},
	} {
		s, err := openapi3gen.NewSchemaRefForValue(v, nil, openapi3gen.SchemaCustomizer(jsonRules))
		if err != nil {
			return fmt.Errorf("openapi: the schema of %s (%T): %w", name, v, err)
		}
		doc.Components.Schemas[name] = s
	}
	// A step whose type has no definition has null.
	if def := doc.Components.Schemas["StepDetail"].Value.Properties["definition"]; def != nil && def.Value != nil {
		def.Value.Nullable = true
	}
	uiFails := map[int]string{
		http.StatusBadRequest:            "A query parameter, header or body that does not parse.",
		http.StatusUnauthorized:          "No bearer token, or one the cluster rejects.",
		http.StatusForbidden:             "The caller may not do what the call needs to workflowruns in the namespace (get or list to read, update to act, create to launch).",
		http.StatusNotFound:              "No such run (or step, or action).",
		http.StatusConflict:              "The run changed since the If-Match version, or its state does not allow the action (the message names it).",
		http.StatusTooManyRequests:       "The caller's rate limit is spent; Retry-After says when to retry.",
		http.StatusNotImplemented:        "The server has no informer of runs to stream events from.",
		http.StatusRequestEntityTooLarge: "The request body is larger than the server takes.",
	}
	for status, description := range uiFails {
		doc.Components.Responses[fmt.Sprintf("UI%d", status)] = &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription(description + " The body is {\"error\": message}.").WithJSONSchemaRef(ref("UIError"))}
	}
	filters := []*openapi3.Parameter{
		query("namespace", "Only this namespace; default: every namespace the caller may list.", str()),
		query("app", "Only runs of this app id.", str()),
		query("category", "Only runs of this category.", str()),
		query("phase", "Only runs in this phase (pending before the controller wrote one).", str()),
		query("label", "A Kubernetes label selector of the runs.", str()),
	}
	events := func(description string) *openapi3.Response {
		return openapi3.NewResponse().WithDescription(description).WithContent(openapi3.Content{
			"text/event-stream": openapi3.NewMediaType().WithSchema(str()),
		})
	}
	ops := []struct {
		method, path, id, summary string
		query                     []*openapi3.Parameter
		body                      *openapi3.RequestBody
		ok                        *openapi3.Response
		fails                     []int
		// okStatus is the status of a success; 0: 200.
		okStatus int
	}{
		{http.MethodGet, "/ui/api/runs", "uiRuns", "The runs the caller may list, newest first.", filters, nil,
			openapi3.NewResponse().WithDescription("The runs.").WithJSONSchemaRef(ref("RunList")),
			[]int{http.StatusBadRequest}, 0},
		{http.MethodGet, "/ui/api/runs/{namespace}/{name}", "uiRun",
			"A run with its steps (status merged in), the edges between them, its context and the actions it allows now.", nil, nil,
			openapi3.NewResponse().WithDescription("The run.").WithJSONSchemaRef(ref("RunDetail")),
			[]int{http.StatusNotFound}, 0},
		{http.MethodGet, "/ui/api/events", "uiEvents",
			"Server-Sent Events: one run event (data: RunSummary, id: resourceVersion) per matching run as it is now, then one on each change, " +
				"deleted ({namespace, name}) on each deletion, a ': ping' comment when idle; dropped when the client reads too slowly.",
			append(append([]*openapi3.Parameter{}, filters...),
				query("run", "Only the run of this name.", str()),
				query("access_token", "The bearer token, for EventSource, which cannot set headers.", str())),
			nil, events("The event stream."),
			[]int{http.StatusBadRequest, http.StatusNotImplemented}, 0},
		{http.MethodPost, "/ui/api/runs/{namespace}/{name}/actions/{verb}", "uiAction",
			"An action on the run (verb: resume, suspend, terminate, retry, retry-from, context), as /workflow's operations do it, " +
				"with the caller's identity (SubjectAccessReview of update; recorded on the run and in an Operated Event).", nil,
			openapi3.NewRequestBody().WithDescription(`retry-from: {"step": name}; context: {"context": {key: value}} (merged into the run's context); ` +
				"the others take none. An If-Match header with the run's resourceVersion makes a changed run a 409.").
				WithJSONSchemaRef(ref("ActionBody")),
			openapi3.NewResponse().WithDescription("The run after the write.").WithJSONSchemaRef(ref("ActionResult")),
			[]int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}, 0},
		{http.MethodGet, "/ui/api/runs/{namespace}/{name}/steps/{step}", "uiStep",
			"A step with its attempts, the op calls of its current attempt (never their parameters or results), its #Log lines and its definition.", nil, nil,
			openapi3.NewResponse().WithDescription("The step.").WithJSONSchemaRef(ref("StepDetail")),
			[]int{http.StatusNotFound}, 0},
		{http.MethodGet, "/ui/api/runs/{namespace}/{name}/steps/{step}/logs", "uiStepLogs",
			"Server-Sent Events: log (id: the line's number, data: LogLine) for each #Log line of the step, then, with follow, each new one " +
				"as the controller saves it, until the step or its run is finished or the stream's time bound; then end (data: LogEnd). " +
				"Last-Event-ID resumes after that line.",
			[]*openapi3.Parameter{
				query("follow", "true: stream new lines until the step is finished.", openapi3.NewBoolSchema()),
				query("access_token", "The bearer token, for EventSource, which cannot set headers.", str()),
			},
			nil, events("The log stream."),
			[]int{http.StatusBadRequest, http.StatusNotFound, http.StatusNotImplemented}, 0},
		{http.MethodGet, "/ui/api/definitions", "uiDefinitions",
			"The step and component definitions runs of the namespace resolve types to: its own, then the system namespace's it does not define again; by kind, then name.",
			[]*openapi3.Parameter{query("namespace", "The namespace whose runs would use them; default: the system namespace's definitions.", str())}, nil,
			openapi3.NewResponse().WithDescription("The definitions.").WithJSONSchemaRef(ref("DefinitionList")),
			[]int{http.StatusBadRequest}, 0},
		{http.MethodGet, "/ui/api/workflows", "uiWorkflows", "The stored Workflows, by namespace then name.",
			[]*openapi3.Parameter{query("namespace", "Only this namespace; default: every namespace the caller may list.", str())}, nil,
			openapi3.NewResponse().WithDescription("The Workflows.").WithJSONSchemaRef(ref("WorkflowList")),
			[]int{http.StatusBadRequest}, 0},
		{http.MethodPost, "/ui/api/runs", "uiLaunch",
			"Launch a run of one step (definition, properties) or of a stored Workflow (workflow, context), created by the caller (create workflowruns).", nil,
			openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref("LaunchRequest")),
			openapi3.NewResponse().WithDescription("The run created.").WithJSONSchemaRef(ref("Launched")),
			[]int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, http.StatusCreated},
		{http.MethodGet, "/ui/api/apps/{namespace}/{appId}/deploys", "uiDeploys",
			"The app's DEPLOY runs in the namespace, newest first, and the run a rollback returns to now.",
			[]*openapi3.Parameter{query("scope", "Only the runs of this scope (stepflow.dev/scope), and the rollback target in it; default: every scope's runs, the target in the newest run's scope.", str())}, nil,
			openapi3.NewResponse().WithDescription("The app's deploys.").WithJSONSchemaRef(ref("Deploys")),
			nil, 0},
	}
	for _, o := range ops {
		op := &openapi3.Operation{OperationID: o.id, Summary: o.summary, Tags: []string{"ui"}}
		for _, name := range pathParams(o.path) {
			op.AddParameter(openapi3.NewPathParameter(name).WithSchema(str()))
		}
		for _, q := range o.query {
			op.AddParameter(q)
		}
		if o.body != nil {
			op.RequestBody = &openapi3.RequestBodyRef{Value: o.body}
		}
		okStatus := o.okStatus
		if okStatus == 0 {
			okStatus = http.StatusOK
		}
		op.Responses = openapi3.NewResponses(openapi3.WithStatus(okStatus, &openapi3.ResponseRef{Value: o.ok}))
		op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("An error of the server: {\"error\": message}.").WithJSONSchemaRef(ref("UIError"))})
		for _, status := range append(o.fails, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests) {
			op.Responses.Set(fmt.Sprint(status), &openapi3.ResponseRef{Ref: fmt.Sprintf("#/components/responses/UI%d", status)})
		}
		doc.AddOperation(o.path, o.method, op)
	}
	return nil
}
