package query

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/component"
)

// DefaultKinds are the kinds listed when a query names none: those
// Stepflow's shipped component types render.
var DefaultKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "ConfigMap"},
}

// appParams is the app every query op is given ($params.app, or the flat
// call's app).
type appParams struct {
	App appRef `json:"app"`
}

type appRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Filter    struct {
		Cluster          string   `json:"cluster"`
		ClusterNamespace string   `json:"clusterNamespace"`
		Components       []string `json:"components"`
		Kind             string   `json:"kind"`
		APIVersion       string   `json:"apiVersion"`
	} `json:"filter"`
}

// item is one object of an app, as the ops return it.
type item struct {
	cluster, component string
	obj                *unstructured.Unstructured
}

func (it item) value() map[string]any {
	return map[string]any{"cluster": it.cluster, "component": it.component, "revision": "", "object": it.obj.Object}
}

func values(items []item) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it.value()
	}
	return out
}

// target is where an app's objects are looked for: resolved from appRef.
type target struct {
	opName    string
	cluster   string
	namespace string
	selector  labels.Selector
	c         client.Client
}

// resolve checks ref and finds the client and selector of its objects.
func (f *Family) resolve(ctx context.Context, opName string, step op.Step, ref appRef) (*target, error) {
	if ref.Name == "" {
		return nil, op.Permanentf("%s: app.name (the app id) is required", opName)
	}
	sel := labels.NewSelector()
	r, err := labels.NewRequirement(app.LabelAppID, selection.Equals, []string{app.LabelValue(ref.Name)})
	if err != nil {
		return nil, op.Permanentf("%s: app %q: %w", opName, ref.Name, err)
	}
	sel = sel.Add(*r)
	if len(ref.Filter.Components) > 0 {
		r, err := labels.NewRequirement(component.LabelComponent, selection.In, ref.Filter.Components)
		if err != nil {
			return nil, op.Permanentf("%s: filter.components: %w", opName, err)
		}
		sel = sel.Add(*r)
	}
	ns := ref.Filter.ClusterNamespace
	if ns == "" {
		ns = ref.Namespace
	}
	if ns == "" {
		ns = step.Namespace
	}
	c, err := f.clientFor(ctx, step, ref.Filter.Cluster)
	if err != nil {
		return nil, err
	}
	return &target{opName: opName, cluster: clusterName(ref.Filter.Cluster), namespace: ns, selector: sel, c: c}, nil
}

// kinds are the kinds ref asks for: its filter's, else DefaultKinds.
func kinds(opName string, ref appRef) ([]schema.GroupVersionKind, error) {
	f := ref.Filter
	switch {
	case f.Kind == "" && f.APIVersion == "":
		return DefaultKinds, nil
	case f.Kind == "" || f.APIVersion == "":
		return nil, op.Permanentf("%s: filter.kind and filter.apiVersion go together (got kind %q, apiVersion %q)", opName, f.Kind, f.APIVersion)
	}
	gv, err := schema.ParseGroupVersion(f.APIVersion)
	if err != nil {
		return nil, op.Permanentf("%s: filter.apiVersion %q: %w", opName, f.APIVersion, err)
	}
	return []schema.GroupVersionKind{gv.WithKind(f.Kind)}, nil
}

// list lists the app's objects of kind gvk, sorted by name.
func (t *target) list(ctx context.Context, gvk schema.GroupVersionKind) ([]item, error) {
	return t.listSelected(ctx, gvk, t.selector)
}

func (t *target) listSelected(ctx context.Context, gvk schema.GroupVersionKind, sel labels.Selector) ([]item, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := t.c.List(ctx, l, client.InNamespace(t.namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, t.listError(gvk, err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].GetName() < l.Items[j].GetName() })
	out := make([]item, len(l.Items))
	for i := range l.Items {
		o := &l.Items[i]
		o.SetGroupVersionKind(gvk)
		out[i] = item{cluster: t.cluster, component: o.GetLabels()[component.LabelComponent], obj: o}
	}
	return out, nil
}

// listError names the op, the kind, the namespace and the cluster; a kind
// that is not served and a denial are permanent.
func (t *target) listError(gvk schema.GroupVersionKind, err error) error {
	where := fmt.Sprintf("%s: listing %s %s in namespace %q of cluster %q", t.opName, gvk.GroupVersion(), gvk.Kind, t.namespace, t.cluster)
	switch {
	case meta.IsNoMatchError(err), apierrors.IsNotFound(err):
		// A LIST is never 404 for a missing object: the kind is not served.
		group := fmt.Sprintf("group %q", gvk.Group)
		if gvk.Group == "" {
			group = "the core group"
		}
		return op.Permanentf("%s: no kind %q in %s (version %q): is its CRD installed? (%w)", where, gvk.Kind, group, gvk.Version, err)
	case op.IsPermanent(err), apierrors.IsForbidden(err), apierrors.IsBadRequest(err):
		return op.Permanentf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// listParams is query.#ListResourcesInApp's $params and ql's call.
type listParams struct {
	appParams
}

type listOp struct{ f *Family }

func (*listOp) NewParams() any     { return &listParams{} }
func (*listOp) Class(any) op.Class { return op.Idempotent }

func (o *listOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[listParams](call)
	if err != nil {
		return op.Result{}, err
	}
	items, err := o.f.appObjects(ctx, "query.listResourcesInApp", call.Step, p.App)
	if err != nil {
		return op.Result{}, err
	}
	return op.Result{Returns: map[string]any{"list": values(items)}}, nil
}

// appObjects lists the objects of the app ref names, of the kinds it asks
// for, in kind order, then by name.
func (f *Family) appObjects(ctx context.Context, opName string, step op.Step, ref appRef) ([]item, error) {
	ks, err := kinds(opName, ref)
	if err != nil {
		return nil, err
	}
	t, err := f.resolve(ctx, opName, step, ref)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, gvk := range ks {
		got, err := t.list(ctx, gvk)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

type collectOp struct{ f *Family }

func (*collectOp) NewParams() any     { return &listParams{} }
func (*collectOp) Class(any) op.Class { return op.Idempotent }

var podGVK = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}

// workloads are the kinds whose spec.selector picks an app's Pods.
var workloads = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
}

func (o *collectOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[listParams](call)
	if err != nil {
		return op.Result{}, err
	}
	const name = "query.collectResources"
	if p.App.Filter.Kind != podGVK.Kind || p.App.Filter.APIVersion != "v1" {
		items, err := o.f.appObjects(ctx, name, call.Step, p.App)
		if err != nil {
			return op.Result{}, err
		}
		return op.Result{Returns: map[string]any{"list": values(items)}}, nil
	}
	t, err := o.f.resolve(ctx, name, call.Step, p.App)
	if err != nil {
		return op.Result{}, err
	}
	var out []item
	seen := map[string]bool{}
	for _, gvk := range workloads {
		ws, err := t.list(ctx, gvk)
		if err != nil {
			return op.Result{}, err
		}
		for _, w := range ws {
			sel, err := podSelector(w.obj)
			if err != nil {
				return op.Result{}, op.Permanentf("%s: %s %s/%s: spec.selector: %w", name, gvk.Kind, w.obj.GetNamespace(), w.obj.GetName(), err)
			}
			pods, err := t.listSelected(ctx, podGVK, sel)
			if err != nil {
				return op.Result{}, err
			}
			for _, pod := range pods {
				if seen[pod.obj.GetName()] {
					continue
				}
				seen[pod.obj.GetName()] = true
				pod.component = w.component
				out = append(out, pod)
			}
		}
	}
	return op.Result{Returns: map[string]any{"list": values(out)}}, nil
}

// podSelector is a workload's spec.selector; one that selects nothing or
// everything is an error (a workload the API server accepted has one).
func podSelector(w *unstructured.Unstructured) (labels.Selector, error) {
	raw, found, err := unstructured.NestedMap(w.Object, "spec", "selector")
	if err != nil || !found {
		return nil, fmt.Errorf("missing or not an object (%v)", err)
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return nil, err
	}
	if sel.Empty() {
		return nil, fmt.Errorf("empty: it would select every Pod")
	}
	return sel, nil
}
