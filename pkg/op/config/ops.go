package config

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

type createOp struct{ f *Family }

func (*createOp) NewParams() any { return &createParams{} }

// Class is Idempotent: create writes the whole desired Secret by
// server-side apply, so running it again converges to the same config.
func (*createOp) Class(any) op.Class { return op.Idempotent }

func (o *createOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[createParams](call)
	if err != nil {
		return op.Result{}, err
	}
	ns := namespaceOr(p.Namespace, call.Step)
	if p.Name == "" {
		return op.Result{}, op.Permanentf("create config in namespace %q: name is required", ns)
	}
	c, err := o.f.client(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	want, err := o.f.desired(ctx, c, p, ns)
	if err != nil {
		return op.Result{}, err
	}
	have, found, err := getSecret(ctx, c, ns, p.Name)
	if err != nil {
		return op.Result{}, apiErr(err, "config %q in namespace %q: reading its Secret", p.Name, ns)
	}
	if found {
		if err := changeAllowed(have, want); err != nil {
			return op.Result{}, err
		}
	}
	if err := c.Patch(ctx, want, client.Apply, client.FieldOwner(kube.FieldOwner), client.ForceOwnership); err != nil {
		return op.Result{}, apiErr(err, "config %q in namespace %q: writing its Secret", p.Name, ns)
	}
	return op.Result{Returns: map[string]any{}}, nil
}

// desired builds the Secret of the config p asks for, in ns, reading its
// template (if any) through c.
func (f *Family) desired(ctx context.Context, c client.Client, p *createParams, ns string) (*unstructured.Unstructured, error) {
	props := p.Config
	if props == nil {
		props = map[string]any{}
	}
	raw, err := json.Marshal(props)
	if err != nil {
		return nil, op.Permanentf("config %q in namespace %q: properties: %v", p.Name, ns, err)
	}
	labels := map[string]any{LabelCatalog: CatalogValue, LabelType: ""}
	annotations := map[string]any{AnnotationAlias: "", AnnotationDescription: ""}
	s := newSecret()
	if p.Template != "" {
		tns, tname := splitTemplate(p.Template, f.templateNamespace)
		t, err := readTemplate(ctx, c, tns, tname)
		if err != nil {
			return nil, fmt.Errorf("config %q in namespace %q: %w", p.Name, ns, err)
		}
		labels[LabelType] = tname
		labels[LabelScope] = t.GetLabels()[LabelScope]
		annotations[AnnotationSensitive] = fmt.Sprint(t.GetAnnotations()[AnnotationSensitive] == "true")
		annotations[AnnotationTemplateNamespace] = tns
		s.Object["type"] = secretType(tname)
	}
	s.SetName(p.Name)
	s.SetNamespace(ns)
	meta := s.Object["metadata"].(map[string]any)
	meta["labels"] = labels
	meta["annotations"] = annotations
	s.Object["data"] = map[string]any{KeyProperties: base64.StdEncoding.EncodeToString(raw)}
	return s, nil
}

// secretType is the type KubeVela gives the Secret of a config made from
// template (when the template's output does not set one).
func secretType(template string) string {
	if template == "" {
		return string(corev1.SecretTypeOpaque)
	}
	return "/" + template
}

// readTemplate reads template name's ConfigMap in namespace ns.
func readTemplate(ctx context.Context, c client.Client, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: TemplatePrefix + name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, op.Permanentf("template %q not found in namespace %q (no ConfigMap %s%s)", name, ns, TemplatePrefix, name)
		}
		return nil, apiErr(err, "template %q in namespace %q", name, ns)
	}
	return u, nil
}

// changeAllowed refuses to write want over have when have is not a config,
// or when want changes its template or Secret type (both are fixed when
// the config is created, in KubeVela).
func changeAllowed(have *corev1.Secret, want *unstructured.Unstructured) error {
	where := fmt.Sprintf("config %q in namespace %q", have.Name, have.Namespace)
	if !isConfig(have) {
		return op.Permanentf("%s: a Secret of that name exists and is not a config (no label %s=%s)", where, LabelCatalog, CatalogValue)
	}
	if from, to := have.Labels[LabelType], want.GetLabels()[LabelType]; from != to {
		return op.Permanentf("%s: the template of a config cannot be changed (from %q to %q)", where, from, to)
	}
	from := string(have.Type)
	if from == "" {
		from = string(corev1.SecretTypeOpaque)
	}
	if to := secretType(want.GetLabels()[LabelType]); from != to {
		return op.Permanentf("%s: the Secret type of a config cannot be changed (from %q to %q)", where, from, to)
	}
	return nil
}

type readOp struct{ f *Family }

func (*readOp) NewParams() any     { return &nameParams{} }
func (*readOp) Class(any) op.Class { return op.Idempotent }

func (o *readOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[nameParams](call)
	if err != nil {
		return op.Result{}, err
	}
	s, _, err := o.f.config(ctx, call.Step, p)
	if err != nil {
		return op.Result{}, err
	}
	if sensitive(s) {
		return op.Result{}, op.Permanentf("config %q in namespace %q is sensitive: its properties cannot be read by a step", s.Name, s.Namespace)
	}
	props, err := properties(s)
	if err != nil {
		return op.Result{}, op.Permanent(err)
	}
	return op.Result{Returns: map[string]any{"config": props}}, nil
}

// config reads the config p names, failing when there is none.
func (f *Family) config(ctx context.Context, step op.Step, p *nameParams) (*corev1.Secret, client.Client, error) {
	ns := namespaceOr(p.Namespace, step)
	if p.Name == "" {
		return nil, nil, op.Permanentf("config in namespace %q: name is required", ns)
	}
	c, err := f.client(ctx, step)
	if err != nil {
		return nil, nil, err
	}
	s, found, err := getSecret(ctx, c, ns, p.Name)
	if err != nil {
		return nil, nil, apiErr(err, "config %q in namespace %q", p.Name, ns)
	}
	if !found {
		return nil, nil, op.Permanentf("config %q in namespace %q not found", p.Name, ns)
	}
	if !isConfig(s) {
		return nil, nil, op.Permanentf("config %q in namespace %q: the Secret of that name is not a config (no label %s=%s)", p.Name, ns, LabelCatalog, CatalogValue)
	}
	return s, c, nil
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
	ns := namespaceOr(p.Namespace, call.Step)
	if p.Template == "" {
		return op.Result{}, op.Permanentf("list configs in namespace %q: template is required", ns)
	}
	_, template := splitTemplate(p.Template, "")
	c, err := o.f.client(ctx, call.Step)
	if err != nil {
		return op.Result{}, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{LabelCatalog: CatalogValue, LabelType: template}); err != nil {
		return op.Result{}, apiErr(err, "list configs of template %q in namespace %q", template, ns)
	}
	configs := make([]any, 0, len(list.Items))
	for i := range list.Items {
		var s corev1.Secret
		if err := fromUnstructured(&list.Items[i], &s); err != nil {
			return op.Result{}, fmt.Errorf("list configs of template %q in namespace %q: %w", template, ns, err)
		}
		props := map[string]any{}
		if !sensitive(&s) {
			if props, err = properties(&s); err != nil {
				// KubeVela skips a config whose properties do not decode.
				continue
			}
		}
		configs = append(configs, map[string]any{
			"name":        s.Name,
			"alias":       s.Annotations[AnnotationAlias],
			"description": s.Annotations[AnnotationDescription],
			"config":      props,
		})
	}
	sort.SliceStable(configs, func(i, j int) bool {
		return configs[i].(map[string]any)["name"].(string) < configs[j].(map[string]any)["name"].(string)
	})
	return op.Result{Returns: map[string]any{"configs": configs}}, nil
}

type deleteOp struct{ f *Family }

func (*deleteOp) NewParams() any { return &nameParams{} }

// Class is Effect: deleting a config that is gone fails, so a second run
// would fail a step that succeeded, and would delete a config made again
// since.
func (*deleteOp) Class(any) op.Class { return op.Effect }

func (o *deleteOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[nameParams](call)
	if err != nil {
		return op.Result{}, err
	}
	s, c, err := o.f.config(ctx, call.Step, p)
	if err != nil {
		return op.Result{}, err
	}
	if raw, ok := s.Data[KeyObjectReferences]; ok {
		var refs []corev1.ObjectReference
		if err := json.Unmarshal(raw, &refs); err != nil {
			return op.Result{}, op.Permanentf("config %q in namespace %q: %s: %v", s.Name, s.Namespace, KeyObjectReferences, err)
		}
		for _, ref := range refs {
			obj := &unstructured.Unstructured{}
			obj.SetAPIVersion(ref.APIVersion)
			obj.SetKind(ref.Kind)
			obj.SetNamespace(ref.Namespace)
			obj.SetName(ref.Name)
			if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				return op.Result{}, apiErr(err, "config %q in namespace %q: deleting its object %s %s/%s", s.Name, s.Namespace, ref.Kind, ref.Namespace, ref.Name)
			}
		}
	}
	u := newSecret()
	u.SetNamespace(s.Namespace)
	u.SetName(s.Name)
	if err := c.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
		return op.Result{}, apiErr(err, "config %q in namespace %q: deleting its Secret", s.Name, s.Namespace)
	}
	return op.Result{Returns: map[string]any{}}, nil
}
