package config

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// The format of a config Secret and of a template ConfigMap, as KubeVela
// core writes and reads them.
const (
	LabelCatalog                = "config.oam.dev/catalog"
	LabelType                   = "config.oam.dev/type"
	LabelScope                  = "config.oam.dev/scope"
	CatalogValue                = "velacore-config"
	AnnotationSensitive         = "config.oam.dev/sensitive"
	AnnotationTemplateNamespace = "config.oam.dev/template-namespace"
	AnnotationAlias             = "config.oam.dev/alias"
	AnnotationDescription       = "config.oam.dev/description"
	// KeyProperties is the Secret data key holding the properties as JSON.
	KeyProperties = "input-properties"
	// KeyObjectReferences is the Secret data key listing the objects a
	// template's outputs created (JSON corev1.ObjectReference list).
	KeyObjectReferences = "objects-reference"
	// TemplatePrefix prefixes a template's name to name its ConfigMap.
	TemplatePrefix = "config-template-"
	// DefaultTemplateNamespace holds the templates named without a namespace.
	DefaultTemplateNamespace = "vela-system"
)

// Family is the config ops, acting through clusters' local cluster as each
// step's identity.
type Family struct {
	clusters          kube.Clusters
	templateNamespace string
}

// New returns the family over clusters (only the local cluster, "", is
// used), with templates named without a namespace looked up in vela-system.
func New(clusters kube.Clusters) *Family {
	return &Family{clusters: clusters, templateNamespace: DefaultTemplateNamespace}
}

// WithTemplateNamespace makes templates named without a namespace be looked
// up in ns.
func (f *Family) WithTemplateNamespace(ns string) *Family {
	f.templateNamespace = ns
	return f
}

// Provider is the #provider of the ops' CUE schemas.
func (f *Family) Provider() string { return "config" }

// Ops maps each #do to its op.
func (f *Family) Ops() map[string]op.Op {
	return map[string]op.Op{
		"create": &createOp{f: f},
		"read":   &readOp{f: f},
		"list":   &listOp{f: f},
		"delete": &deleteOp{f: f},
	}
}

var _ op.Family = (*Family)(nil)

// createParams is config.#CreateConfig's $params and op.#CreateConfig.
type createParams struct {
	Name      string         `json:"name"`
	Namespace string         `json:"namespace"`
	Template  string         `json:"template,omitempty"`
	Config    map[string]any `json:"config"`
}

// nameParams names one config: #ReadConfig and #DeleteConfig.
type nameParams struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// listParams is #ListConfig's: the configs of a template in a namespace.
type listParams struct {
	Template  string `json:"template"`
	Namespace string `json:"namespace"`
}

// client returns the local cluster's client for the call's step.
func (f *Family) client(ctx context.Context, step op.Step) (client.Client, error) {
	c, err := f.clusters.Cluster(ctx, step, "")
	if err != nil {
		if op.IsPermanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	return c, nil
}

// namespaceOr is ns, or the step's namespace when ns is empty.
func namespaceOr(ns string, step op.Step) string {
	if ns == "" {
		return step.Namespace
	}
	return ns
}

// apiErr wraps err from a request about what, keeping the tenancy
// client's denial permanent and making a request the API server can never
// accept permanent too.
func apiErr(err error, format string, args ...any) error {
	wrapped := fmt.Errorf(format+": %w", append(args, err)...)
	switch {
	case op.IsPermanent(err),
		apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err),
		apierrors.IsRequestEntityTooLargeError(err):
		return op.Permanent(wrapped)
	}
	return wrapped
}

// newSecret returns an empty unstructured Secret (unstructured, so the
// client's scheme need not know core/v1).
func newSecret() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return u
}

// getSecret reads Secret namespace/name; found is false when there is
// none.
func getSecret(ctx context.Context, c client.Client, namespace, name string) (s *corev1.Secret, found bool, err error) {
	u := newSecret()
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	s = &corev1.Secret{}
	if err := fromUnstructured(u, s); err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// fromUnstructured converts u to the typed out.
func fromUnstructured(u *unstructured.Unstructured, out any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// isConfig reports whether s is a config Secret.
func isConfig(s *corev1.Secret) bool { return s.Labels[LabelCatalog] == CatalogValue }

// sensitive reports whether s is the Secret of a sensitive config.
func sensitive(s *corev1.Secret) bool { return s.Annotations[AnnotationSensitive] == "true" }

// properties decodes the input-properties of config Secret s.
func properties(s *corev1.Secret) (map[string]any, error) {
	raw, ok := s.Data[KeyProperties]
	if !ok {
		return nil, fmt.Errorf("config %q in namespace %q has no %s data", s.Name, s.Namespace, KeyProperties)
	}
	props := map[string]any{}
	if err := json.Unmarshal(raw, &props); err != nil {
		return nil, fmt.Errorf("config %q in namespace %q: %s is not a JSON object: %w", s.Name, s.Namespace, KeyProperties, err)
	}
	return props, nil
}

// splitTemplate splits "NAMESPACE/NAME" or "NAME" (in def).
func splitTemplate(template, def string) (namespace, name string) {
	if ns, n, ok := strings.Cut(template, "/"); ok {
		return ns, n
	}
	return def, template
}
