package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// fieldManager owns the fields the CLI applies.
const fieldManager = "stepflow"

var (
	kindRun        = v1alpha1.GroupVersion.WithKind("WorkflowRun")
	kindWorkflow   = v1alpha1.GroupVersion.WithKind("Workflow")
	kindDefinition = v1beta1.GroupVersion.WithKind("WorkflowStepDefinition")
	// kindComponent is a component type: what `def apply` makes of a CUE
	// source of type "component".
	kindComponent = v1beta1.GroupVersion.WithKind("ComponentDefinition")
)

// applyOrder applies definitions before the workflows and runs that use
// them, so a run never starts while its step types are still missing.
var applyOrder = map[schema.GroupVersionKind]int{kindDefinition: 0, kindComponent: 0, kindWorkflow: 1, kindRun: 2}

// A manifest is one document of a file given with -f.
type manifest struct {
	source string // file and document number, for errors
	obj    *unstructured.Unstructured
}

// readManifests reads the YAML or JSON documents of path ("-" is stdin).
// Each must be one of kinds, and is checked against its Go type so that a
// misspelt field is an error here rather than dropped by the API server.
func readManifests(path string, stdin io.Reader, s *runtime.Scheme, kinds ...schema.GroupVersionKind) ([]manifest, error) {
	var src []byte
	var err error
	if path == "-" {
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	strict := serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(src)))
	var out []manifest
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		source := fmt.Sprintf("%s (document %d)", path, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		if gvk := obj.GroupVersionKind(); !isOneOf(gvk, kinds) {
			return nil, fmt.Errorf("%s: %s %q is not a %s", source, kindString(gvk), obj.GetName(), kindList(kinds))
		}
		if _, _, err := strict.Decode(doc, nil, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		out = append(out, manifest{source: source, obj: obj})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %s found", path, kindList(kinds))
	}
	return out, nil
}

func isOneOf(gvk schema.GroupVersionKind, kinds []schema.GroupVersionKind) bool {
	for _, k := range kinds {
		if gvk == k {
			return true
		}
	}
	return false
}

func kindString(gvk schema.GroupVersionKind) string {
	if gvk.Kind == "" {
		return "a document without apiVersion and kind"
	}
	return gvk.GroupVersion().String() + " " + gvk.Kind
}

func kindList(kinds []schema.GroupVersionKind) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Kind
	}
	return strings.Join(names, ", ")
}

// sortForApply orders manifests by applyOrder, keeping file order otherwise.
func sortForApply(ms []manifest) {
	sort.SliceStable(ms, func(i, j int) bool {
		return applyOrder[ms[i].obj.GroupVersionKind()] < applyOrder[ms[j].obj.GroupVersionKind()]
	})
}

// inNamespace puts obj in ns unless it names its own namespace. As with
// kubectl, an explicit -n that differs from the document's is an error.
func inNamespace(obj *unstructured.Unstructured, ns string, explicit bool) error {
	switch own := obj.GetNamespace(); {
	case own == "":
		obj.SetNamespace(ns)
	case explicit && own != ns:
		return fmt.Errorf("%s %q is in namespace %q, not %q: pass --namespace=%s or drop its metadata.namespace",
			obj.GetKind(), obj.GetName(), own, ns, own)
	}
	return nil
}

// apply creates obj or updates it with server-side apply, and says which
// ("created", "configured", "unchanged"). A document with only
// metadata.generateName is created under a new name, which obj then holds.
func apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) (string, error) {
	if obj.GetName() == "" {
		if obj.GetGenerateName() == "" {
			return "", fmt.Errorf("%s has neither metadata.name nor metadata.generateName", obj.GetKind())
		}
		if err := c.Create(ctx, obj, client.FieldOwner(fieldManager)); err != nil {
			return "", writeError(err, fmt.Sprintf("%s %s/%s*", strings.ToLower(obj.GetKind()), obj.GetNamespace(), obj.GetGenerateName()))
		}
		return "created", nil
	}
	what := described(strings.ToLower(obj.GetKind()), client.ObjectKeyFromObject(obj))
	before := &unstructured.Unstructured{}
	before.SetGroupVersionKind(obj.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), before)
	existed := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return "", apiError(err, what)
	}
	if err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return "", writeError(err, what)
	}
	switch {
	case !existed:
		return "created", nil
	case before.GetResourceVersion() == obj.GetResourceVersion():
		return "unchanged", nil
	}
	return "configured", nil
}

// writeError reports a failed create or apply. Not found there means the
// namespace is missing, which the server's message says.
func writeError(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return apiError(err, what)
}

// applied prints what apply did, as kubectl does.
func applied(w io.Writer, obj *unstructured.Unstructured, what string) {
	fmt.Fprintf(w, "%s.%s/%s %s\n", strings.ToLower(obj.GetKind()), obj.GroupVersionKind().Group, obj.GetName(), what)
}
