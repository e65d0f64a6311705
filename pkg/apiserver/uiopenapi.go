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
	} {
		s, err := openapi3gen.NewSchemaRefForValue(v, nil, openapi3gen.SchemaCustomizer(jsonRules))
		if err != nil {
			return fmt.Errorf("openapi: the schema of %s (%T): %w", name, v, err)
		}
		doc.Components.Schemas[name] = s
	}
	uiFails := map[int]string{
		http.StatusBadRequest:      "A query parameter that does not parse.",
		http.StatusUnauthorized:    "No bearer token, or one the cluster rejects.",
		http.StatusForbidden:       "The caller may not get or list workflowruns in the namespace.",
		http.StatusNotFound:        "No such run.",
		http.StatusTooManyRequests: "The caller's rate limit is spent; Retry-After says when to retry.",
		http.StatusNotImplemented:  "The server has no informer of runs to stream events from.",
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
	ops := []struct {
		path, id, summary string
		query             []*openapi3.Parameter
		ok                *openapi3.Response
		fails             []int
	}{
		{"/ui/api/runs", "uiRuns", "The runs the caller may list, newest first.", filters,
			openapi3.NewResponse().WithDescription("The runs.").WithJSONSchemaRef(ref("RunList")),
			[]int{http.StatusBadRequest}},
		{"/ui/api/runs/{namespace}/{name}", "uiRun", "A run with its steps (status merged in), the edges between them and its context.", nil,
			openapi3.NewResponse().WithDescription("The run.").WithJSONSchemaRef(ref("RunDetail")),
			[]int{http.StatusNotFound}},
		{"/ui/api/events", "uiEvents",
			"Server-Sent Events: one run event (data: RunSummary, id: resourceVersion) per matching run as it is now, then one on each change, " +
				"deleted ({namespace, name}) on each deletion, a ': ping' comment when idle; dropped when the client reads too slowly.",
			append(append([]*openapi3.Parameter{}, filters...),
				query("run", "Only the run of this name.", str()),
				query("access_token", "The bearer token, for EventSource, which cannot set headers.", str())),
			openapi3.NewResponse().WithDescription("The event stream.").WithContent(openapi3.Content{
				"text/event-stream": openapi3.NewMediaType().WithSchema(str()),
			}),
			[]int{http.StatusBadRequest, http.StatusNotImplemented}},
	}
	for _, o := range ops {
		op := &openapi3.Operation{OperationID: o.id, Summary: o.summary, Tags: []string{"ui"}}
		for _, name := range pathParams(o.path) {
			op.AddParameter(openapi3.NewPathParameter(name).WithSchema(str()))
		}
		for _, q := range o.query {
			op.AddParameter(q)
		}
		op.Responses = openapi3.NewResponses(openapi3.WithStatus(http.StatusOK, &openapi3.ResponseRef{Value: o.ok}))
		op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("An error of the server: {\"error\": message}.").WithJSONSchemaRef(ref("UIError"))})
		for _, status := range append(o.fails, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests) {
			op.Responses.Set(fmt.Sprint(status), &openapi3.ResponseRef{Ref: fmt.Sprintf("#/components/responses/UI%d", status)})
		}
		doc.AddOperation(o.path, http.MethodGet, op)
	}
	return nil
}
