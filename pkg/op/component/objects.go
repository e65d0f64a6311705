package component

import (
	"errors"
	"fmt"
	"sort"

	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// LabelComponent is the label every rendered object carries: the name of
// its component, as KubeVela labels them.
const LabelComponent = "app.oam.dev/component"

// collect reads a rendered template's objects: output first, then outputs
// in key order. The outcome's Outputs are the concrete values of "output"
// and "outputs"; its Data says which of the two the template has at all.
func collect(out eval.Outcome) ([]map[string]any, error) {
	data, _ := out.Data.(map[string]any)
	_, hasOutput := data["output"]
	_, hasOutputs := data["outputs"]
	if !hasOutput && !hasOutputs {
		return nil, errors.New("the template renders no objects: it has neither output nor outputs")
	}
	if len(out.Outputs) != 2 {
		return nil, fmt.Errorf("the evaluator returned %d values for output and outputs, want 2", len(out.Outputs))
	}
	var objects []map[string]any
	if hasOutput {
		v := out.Outputs[0]
		if v.Err != nil {
			return nil, fmt.Errorf("output is not a concrete object: %v", v.Err)
		}
		obj, ok := v.Value.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("output is %T, want an object", v.Value)
		}
		objects = append(objects, obj)
	}
	if hasOutputs {
		v := out.Outputs[1]
		if v.Err != nil {
			return nil, fmt.Errorf("outputs are not concrete objects: %v", v.Err)
		}
		m, ok := v.Value.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("outputs is %T, want a struct of objects", v.Value)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			obj, ok := m[k].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("outputs.%s is %T, want an object", k, m[k])
			}
			objects = append(objects, obj)
		}
	}
	if len(objects) == 0 {
		return nil, errors.New("the template renders no objects: outputs is empty and there is no output")
	}
	for i, obj := range objects {
		if s, _ := obj["kind"].(string); s == "" {
			return nil, fmt.Errorf("object %d (%s) has no kind", i, describe(obj))
		}
		if s, _ := obj["apiVersion"].(string); s == "" {
			return nil, fmt.Errorf("object %d (%s) has no apiVersion", i, describe(obj))
		}
	}
	return objects, nil
}

// describe names an object for a message: its kind and name, as far as it
// has them.
func describe(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	return fmt.Sprintf("kind %q, name %q", kind, name)
}

// clusterScoped are the well-known kinds that live in no namespace: a
// rendered object of these kinds gets none. Kinds not listed (custom
// resources included) are taken to be namespaced.
var clusterScoped = map[string]bool{
	"Namespace":                        true,
	"Node":                             true,
	"PersistentVolume":                 true,
	"ClusterRole":                      true,
	"ClusterRoleBinding":               true,
	"CustomResourceDefinition":         true,
	"APIService":                       true,
	"StorageClass":                     true,
	"CSIDriver":                        true,
	"CSINode":                          true,
	"VolumeAttachment":                 true,
	"PriorityClass":                    true,
	"RuntimeClass":                     true,
	"IngressClass":                     true,
	"MutatingWebhookConfiguration":     true,
	"ValidatingWebhookConfiguration":   true,
	"ValidatingAdmissionPolicy":        true,
	"ValidatingAdmissionPolicyBinding": true,
	"CertificateSigningRequest":        true,
	"FlowSchema":                       true,
	"PriorityLevelConfiguration":       true,
}

// stamp gives a rendered object the render's namespace when it names none
// and is of a namespaced kind, and the component's labels (the app id's
// label value through app.LabelValue, so an id that is no valid label
// value is hashed as a launch hashes it).
func stamp(obj map[string]any, namespace, component, appID string) {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	kind, _ := obj["kind"].(string)
	if ns, _ := meta["namespace"].(string); ns == "" && namespace != "" && !clusterScoped[kind] {
		meta["namespace"] = namespace
	}
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
		meta["labels"] = labels
	}
	labels[LabelComponent] = component
	if appID != "" {
		labels[app.LabelAppID] = app.LabelValue(appID)
	}
}
