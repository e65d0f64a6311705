package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// The UI's catalogue: the definitions and Workflows runs of a namespace
// can use, and a launch of a run of either (docs/ui.md). Definitions are
// resolved as the controller resolves a step's type (definition.Lookup:
// the namespace's own, then the system namespace's); a launch is checked
// against the same lookup before anything is created.

// Sources of a DefinitionItem.
const (
	SourceNamespace = "namespace"
	SourceSystem    = "system"
)

// DefinitionItem is a definition as the catalogue lists it.
type DefinitionItem struct {
	// Kind is WorkflowStepDefinition or ComponentDefinition.
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Source is "namespace" for the namespace's own, "system" for the
	// system namespace's.
	Source      string `json:"source"`
	Description string `json:"description"`
	// Ready is whether the controller found the template, as of its
	// current generation, to compile; Message says why not ("" when it
	// is).
	Ready   bool   `json:"ready"`
	Message string `json:"message"`
	// Schema is the JSON Schema (draft 2020-12) of a step definition's
	// parameter, from its status.parameterSchema; null when it has none
	// (a ComponentDefinition never has).
	Schema any `json:"schema"`
}

// DefinitionList is GET /ui/api/definitions.
type DefinitionList struct {
	Items []DefinitionItem `json:"items"`
}

// WorkflowItem is a stored Workflow as the catalogue lists it.
type WorkflowItem struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Description is its definition.oam.dev/description annotation, as a
	// definition's.
	Description string `json:"description"`
	// Steps is how many top-level steps it has.
	Steps int `json:"steps"`
}

// WorkflowList is GET /ui/api/workflows.
type WorkflowList struct {
	Items []WorkflowItem `json:"items"`
}

// LaunchRequest is the body of POST /ui/api/runs: a run of one step of
// type Definition with Properties, or of the stored Workflow with Context.
type LaunchRequest struct {
	// Namespace is where the run is created; "": the server's.
	Namespace  string         `json:"namespace,omitempty"`
	Definition string         `json:"definition,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Workflow   string         `json:"workflow,omitempty"`
	Context    map[string]any `json:"context,omitempty"`
	// Name is the run's name; "": generated from the type or Workflow.
	Name string `json:"name,omitempty"`
}

// Launched is the answer of POST /ui/api/runs.
type Launched struct {
	Run RunSummary `json:"run"`
}

// maxLaunchBody bounds the body of a launch.
const maxLaunchBody = 1 << 20

// catalogueNamespace is the namespace query parameter; "" when absent.
func catalogueNamespace(r *http.Request) (string, error) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		return "", nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", errorf(http.StatusBadRequest, "namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	return ns, nil
}

// uiDefinitions is GET /ui/api/definitions?namespace=: the step and
// component definitions runs of the namespace see (without one, the
// system namespace's), by kind then name, once the caller may list
// workflowruns there.
func (s *server) uiDefinitions(r *http.Request, u User) (any, error) {
	ns, err := catalogueNamespace(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	where := ns
	if where == "" {
		where = s.systemNamespace()
	}
	if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "list", Namespace: where}); err != nil {
		return nil, err
	}
	defs := definition.Cluster{Reader: s.o.Client, SystemNamespace: s.o.SystemNamespace}
	out := DefinitionList{Items: []DefinitionItem{}}
	for _, kind := range definition.Kinds() {
		visible, err := defs.ForKind(ctx, ns, kind).List()
		if err != nil {
			return nil, err
		}
		for _, v := range visible {
			item, err := definitionItem(v)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, item)
		}
	}
	// By kind, ComponentDefinition first; List sorted each kind by name.
	sort.SliceStable(out.Items, func(i, j int) bool { return out.Items[i].Kind < out.Items[j].Kind })
	return out, nil
}

func (s *server) systemNamespace() string {
	if s.o.SystemNamespace == "" {
		return definition.DefaultSystemNamespace
	}
	return s.o.SystemNamespace
}

// definitionItem is v as the catalogue lists it.
func definitionItem(v definition.Visible) (DefinitionItem, error) {
	kind, err := definition.KindOf(v.Object)
	if err != nil {
		return DefinitionItem{}, err
	}
	item := DefinitionItem{Kind: string(kind), Name: v.Object.GetName(), Namespace: v.Object.GetNamespace(),
		Source: SourceNamespace, Description: v.Object.GetAnnotations()[definition.AnnotationDescription]}
	if v.System {
		item.Source = SourceSystem
	}
	switch c := definition.Ready(v.Object); {
	case c == nil:
		item.Message = "the controller has not checked this generation of the definition yet"
	case c.Status == metav1.ConditionTrue:
		item.Ready = true
	default:
		item.Message = c.Message
	}
	if d, ok := v.Object.(*v1beta1.WorkflowStepDefinition); ok {
		if p := d.Status.ParameterSchema; p != nil && len(p.Raw) > 0 {
			if !json.Valid(p.Raw) {
				return DefinitionItem{}, fmt.Errorf("%s %s/%s: status.parameterSchema is not JSON", kind, d.Namespace, d.Name)
			}
			item.Schema = json.RawMessage(p.Raw)
		}
	}
	return item, nil
}

// uiWorkflows is GET /ui/api/workflows?namespace=: the stored Workflows
// of the namespace, or of every namespace the caller may list runs of,
// by namespace then name.
func (s *server) uiWorkflows(r *http.Request, u User) (any, error) {
	ns, err := catalogueNamespace(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	allowed, err := s.readable(ctx, u, "list", ns)
	if err != nil {
		return nil, err
	}
	var list v1alpha1.WorkflowList
	if err := s.o.Client.List(ctx, &list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing workflows in %s: %w", nsName(ns), err)
	}
	out := WorkflowList{Items: []WorkflowItem{}}
	for _, wf := range list.Items {
		ok, err := allowed.allows(ctx, wf.Namespace)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Items = append(out.Items, WorkflowItem{Namespace: wf.Namespace, Name: wf.Name,
				Description: wf.Annotations[definition.AnnotationDescription], Steps: len(wf.Steps)})
		}
	}
	sort.Slice(out.Items, func(i, j int) bool {
		a, b := out.Items[i], out.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

// uiLaunch is POST /ui/api/runs: a run of one step or of a stored
// Workflow (app.Submission, as `stepflow submit` makes it), created once
// the caller may create workflowruns in the namespace and the step type
// or Workflow exists there; its creator is the caller (the annotation and
// a Launched Event).
func (s *server) uiLaunch(r *http.Request, u User) (any, error) {
	req, err := launchRequest(r)
	if err != nil {
		return nil, err
	}
	if req.Namespace == "" {
		req.Namespace = s.o.Namespace
	}
	ctx := r.Context()
	if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "create", Namespace: req.Namespace}); err != nil {
		return nil, err
	}
	sub := app.Submission{Namespace: req.Namespace, Name: req.Name, Workflow: req.Workflow, Context: req.Context,
		StepType: req.Definition, Properties: req.Properties, Creator: u.Name}
	run, err := sub.Run()
	if err != nil {
		return nil, badInput("%v", err)
	}
	what, steps := "step type "+req.Definition, 1
	if req.Workflow != "" {
		what = "workflow " + req.Workflow
		key := types.NamespacedName{Namespace: req.Namespace, Name: req.Workflow}
		var wf v1alpha1.Workflow
		// Read from the API server: one created a moment ago may not be
		// in the cache yet.
		switch err := s.o.Live.Get(ctx, key, &wf); {
		case apierrors.IsNotFound(err):
			return nil, badInput("workflow %s does not exist", key)
		case err != nil:
			return nil, fmt.Errorf("reading workflow %s: %w", key, err)
		}
		steps = len(wf.Steps)
	} else {
		defs := definition.Cluster{Reader: s.o.Client, Live: s.o.Live, SystemNamespace: s.o.SystemNamespace}.For(ctx, req.Namespace)
		if err := knownStepTypes(defs, run.Spec.WorkflowSpec.Steps); err != nil {
			return nil, err
		}
	}
	if err := s.o.Client.Create(ctx, run); err != nil {
		if apierrors.IsInvalid(err) {
			return nil, badInput("creating a run of %s in namespace %s: %v", what, req.Namespace, err)
		}
		return nil, fmt.Errorf("creating a run of %s in namespace %s: %w", what, req.Namespace, err)
	}
	if s.o.Events != nil {
		s.o.Events.Eventf(run, corev1.EventTypeNormal, "Launched", "launched by %s through the UI: a run of %s", u.Name, what)
	}
	return Launched{Run: runSummary(run, steps, s.o.Now())}, nil
}

// launchRequest reads and checks the body of a launch.
func launchRequest(r *http.Request) (LaunchRequest, error) {
	var req LaunchRequest
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxLaunchBody+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return req, errorf(http.StatusRequestEntityTooLarge, "the launch request is larger than %d bytes", maxLaunchBody)
	case err != nil:
		return req, badInput("reading the launch request: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, badInput("the launch request is not a JSON object of namespace, definition, properties, workflow, context and name: %v", err)
	}
	if dec.More() {
		return req, badInput("the launch request has more than one JSON value")
	}
	switch {
	case (req.Definition == "") == (req.Workflow == ""):
		return req, badInput("the launch request names a definition (a one-step run) or a workflow, one of them")
	case req.Workflow != "" && len(req.Properties) > 0:
		return req, badInput("properties go with a definition; a run of workflow %s takes a context", req.Workflow)
	}
	if req.Namespace != "" {
		if errs := validation.IsDNS1123Label(req.Namespace); len(errs) > 0 {
			return req, badInput("namespace %q: %s", req.Namespace, strings.Join(errs, "; "))
		}
	}
	if req.Name != "" {
		if errs := validation.IsDNS1123Subdomain(req.Name); len(errs) > 0 {
			return req, badInput("name %q: %s", req.Name, strings.Join(errs, "; "))
		}
	}
	return req, nil
}
