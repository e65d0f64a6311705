package apiserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/graph"
)

// DefaultCategory is a launch's category when the request names none.
const DefaultCategory = "DEFAULT"

// Page sizes of GET /workflow.
const (
	defaultPageSize = 20
	maxPageSize     = 1000
)

// namespace is the request's namespace query parameter, else the
// server's.
func (s *server) namespace(r *http.Request) (string, error) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		return s.o.Namespace, nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", badInput("namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	return ns, nil
}

// launch is POST /workflow/launch?appId=&category=&mode=&namespace=, the
// body an ApplicationConfiguration; mode is STEP_BY_STEP (the default) or
// DAG.
func (s *server) launch(r *http.Request, u User) (any, error) {
	ns, err := s.namespace(r)
	if err != nil {
		return nil, err
	}
	if err := s.o.Auth.Authorize(r.Context(), u, Access{Verb: "create", Namespace: ns}); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, app.MaxConfigurationSize+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errorf(http.StatusRequestEntityTooLarge, "the application configuration is larger than %d bytes", app.MaxConfigurationSize)
	case err != nil:
		return nil, badInput("reading the application configuration: %v", err)
	case len(strings.TrimSpace(string(body))) == 0:
		return nil, badInput("no application configuration: send its YAML as the request body")
	}
	q := r.URL.Query()
	category := q.Get("category")
	if category == "" {
		category = DefaultCategory
	}
	mode, err := app.ParseMode(q.Get("mode"))
	if err != nil {
		return nil, badInput("%v", err)
	}
	req := app.Request{
		Configuration: body, AppID: q.Get("appId"), Category: category,
		Namespace: ns, Creator: u.Name, Mode: mode,
		InstanceCounterNamespace: s.o.SystemNamespace, IDLock: &s.ids,
	}
	// Built once and its step types looked up before anything is
	// created, so a bad document is the caller's 400; what fails after it
	// is the server's.
	l, err := app.Build(req)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defs := definition.Cluster{Reader: s.o.Client, SystemNamespace: s.o.SystemNamespace}.For(r.Context(), ns)
	if err := knownStepTypes(defs, l.Run.Spec.WorkflowSpec.Steps); err != nil {
		return nil, err
	}
	l, err = app.Run(r.Context(), s.o.Client, req)
	if err != nil {
		return nil, err
	}
	if s.o.Events != nil {
		id, _ := app.InstanceID(l.Run)
		s.o.Events.Eventf(l.Run, corev1.EventTypeNormal, "Launched", "launched by %s through the REST API: instance %d, app %s, category %s",
			u.Name, id, l.Run.Annotations[app.AnnotationRawAppID], category)
	}
	return detail(r.Context(), s.o.Client, l.Run)
}

// knownStepTypes is a 400 naming the first step whose type has no
// definition where the run would look for it; a step group's sub-steps
// are checked too.
func knownStepTypes(defs definition.Lookup, steps []v1alpha1.WorkflowStep) error {
	check := func(where string, s v1alpha1.WorkflowStepBase) error {
		if s.Type == graph.StepGroup {
			return nil
		}
		_, err := defs.Lookup(s.Type)
		var nf *definition.NotFoundError
		if errors.As(err, &nf) {
			return badInput("%s %q: unknown step type %q: %v", where, s.Name, s.Type, err)
		}
		if err != nil {
			return fmt.Errorf("%s %q: looking up step type %q: %w", where, s.Name, s.Type, err)
		}
		return nil
	}
	for _, s := range steps {
		if err := check("step", s.WorkflowStepBase); err != nil {
			return err
		}
		for _, sub := range s.SubSteps {
			if err := check("sub-step of "+s.Name, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// get is GET /workflow/{instanceId}: a numeric id or "namespace/name".
func (s *server) get(r *http.Request, u User) (any, error) {
	run, err := s.find(r, u, chi.URLParam(r, "instanceId"))
	if err != nil {
		return nil, err
	}
	return detail(r.Context(), s.o.Client, run)
}

// find is the run an instance id names, once u may get it. A numeric id
// is looked up in every namespace, so whether it exists is told before
// whether u may see it: ids are not secret.
func (s *server) find(r *http.Request, u User, param string) (*v1alpha1.WorkflowRun, error) {
	raw, err := url.PathUnescape(param)
	if err != nil {
		return nil, badInput("instance id %q: %v", param, err)
	}
	ctx := r.Context()
	if ns, name, ok := strings.Cut(raw, "/"); ok {
		if ns == "" || name == "" {
			return nil, badInput("instance id %q: want a number or NAMESPACE/NAME", raw)
		}
		if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "get", Namespace: ns}); err != nil {
			return nil, err
		}
		var run v1alpha1.WorkflowRun
		if err := s.o.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &run); err != nil {
			return nil, fmt.Errorf("instance %s: %w", raw, err)
		}
		return &run, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, badInput("instance id %q: want a positive number or NAMESPACE/NAME", raw)
	}
	run, err := app.RunByInstanceID(ctx, s.o.Client, "", id)
	if err != nil {
		return nil, fmt.Errorf("instance %d: %w", id, err)
	}
	if err := s.o.Auth.Authorize(ctx, u, Access{Verb: "get", Namespace: run.Namespace}); err != nil {
		return nil, err
	}
	return run, nil
}

// Page is a page of a list.
type Page[T any] struct {
	Page     int  `json:"page"`
	PageSize int  `json:"pageSize"`
	Total    int  `json:"total"`
	Items    []T  `json:"items"`
	Empty    bool `json:"empty"`
}

// list is GET /workflow in one namespace, newest first, filtered by
// appId, category, labelSelector (through the cache's label index) and
// instanceId, workflowStatus, workflowCreator (on the runs listed).
func (s *server) list(r *http.Request, u User) (any, error) {
	ns, err := s.namespace(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	page, err := positive(q, "page", 1)
	if err != nil {
		return nil, err
	}
	size, err := positive(q, "pageSize", defaultPageSize)
	if err != nil {
		return nil, err
	}
	if size > maxPageSize {
		return nil, badInput("pageSize %d: at most %d", size, maxPageSize)
	}
	sel := labels.Everything()
	if s := q.Get("labelSelector"); s != "" {
		if sel, err = labels.Parse(s); err != nil {
			return nil, badInput("labelSelector %q: %v", s, err)
		}
	}
	set := labels.Set{}
	// An app's runs are read through the cache's app id index.
	opts := []client.ListOption{client.InNamespace(ns), client.UnsafeDisableDeepCopy}
	if v := q.Get("appId"); v != "" {
		opts = append(opts, client.MatchingFields{indexAppID: app.LabelValue(v)})
	}
	if v := q.Get("category"); v != "" {
		set[app.LabelCategory] = app.LabelValue(v)
	}
	if v := q.Get("instanceId"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return nil, badInput("instanceId %q: want a positive number", v)
		}
		set[app.LabelInstanceID] = strconv.FormatInt(id, 10)
	}
	for k, v := range set {
		req, err := labels.NewRequirement(k, "=", []string{v})
		if err != nil {
			return nil, badInput("%s %q: %v", k, v, err)
		}
		sel = sel.Add(*req)
	}
	if err := s.o.Auth.Authorize(r.Context(), u, Access{Verb: "list", Namespace: ns}); err != nil {
		return nil, err
	}
	// The runs are only read, never changed: the cache may hand out its
	// own copies (no deep copy of every run listed).
	var runs v1alpha1.WorkflowRunList
	opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	if err := s.o.Client.List(r.Context(), &runs, opts...); err != nil {
		return nil, fmt.Errorf("listing workflowruns in %s: %w", ns, err)
	}
	status, creator := q.Get("workflowStatus"), q.Get("workflowCreator")
	appID := q.Get("appId")
	items := make([]*v1alpha1.WorkflowRun, 0, len(runs.Items))
	for i := range runs.Items {
		run := &runs.Items[i]
		if status != "" && app.InstanceState(run) != status ||
			creator != "" && run.Annotations[app.AnnotationCreator] != creator ||
			appID != "" && run.Annotations[app.AnnotationRawAppID] != appID { // a hashed label may collide
			continue
		}
		items = append(items, run)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.After(b.CreationTimestamp.Time)
		}
		ai, _ := app.InstanceID(a)
		bi, _ := app.InstanceID(b)
		if ai != bi {
			return ai > bi
		}
		return a.Name > b.Name
	})
	out := Page[Instance]{Page: page, PageSize: size, Total: len(items), Items: []Instance{}}
	if from := (page - 1) * size; from < len(items) {
		for _, run := range items[from:min(from+size, len(items))] {
			out.Items = append(out.Items, summary(run))
		}
	}
	out.Empty = len(out.Items) == 0
	return out, nil
}

// positive is query parameter name as a positive number, def when absent.
func positive(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badInput("%s %q: want a positive number", name, v)
	}
	return n, nil
}
