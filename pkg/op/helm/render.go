package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// render loads archive and renders it as an install of release p.Release
// into p.Namespace with p.Values, returning the objects in install order.
func render(archive []byte, p *Params) ([]map[string]any, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("loading the chart archive: %w", err)
	}
	if t := ch.Metadata.Type; t != "" && t != "application" {
		return nil, fmt.Errorf("chart %s is of type %q, and only application charts render", ch.Name(), t)
	}
	vals := p.Values
	if vals == nil {
		vals = map[string]any{}
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, fmt.Errorf("chart dependencies: %w", err)
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: p.Release, Namespace: p.Namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities.Copy())
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return nil, err
	}

	type doc struct{ file, content string }
	var docs []doc
	for _, crd := range ch.CRDObjects() {
		docs = append(docs, doc{crd.Filename, string(crd.File.Data)})
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		docs = append(docs, doc{name, files[name]})
	}

	objs := []map[string]any{} // never null in $returns
	for _, d := range docs {
		parts := releaseutil.SplitManifests(d.content)
		keys := make([]string, 0, len(parts))
		for k := range parts {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			obj, err := decodeObject(parts[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", d.file, err)
			}
			if obj == nil || isTestHook(obj) {
				continue
			}
			objs = append(objs, obj)
		}
	}

	clusterScoped := chartClusterKinds(objs)
	for _, o := range objs {
		if md, _ := o["metadata"].(map[string]any); md != nil {
			if ns, _ := md["namespace"].(string); ns == "" && !clusterScoped[groupKind(o)] {
				md["namespace"] = p.Namespace
			}
		}
	}
	sortInstallOrder(objs)
	return objs, nil
}

// decodeObject decodes one YAML document; nil for an empty one. Integers
// stay integers.
func decodeObject(y string) (map[string]any, error) {
	if strings.TrimSpace(y) == "" {
		return nil, nil
	}
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	obj, ok := numbers(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a manifest is a %T, not an object", v)
	}
	if k, _ := obj["kind"].(string); k == "" {
		return nil, fmt.Errorf("a manifest has no kind")
	}
	if a, _ := obj["apiVersion"].(string); a == "" {
		return nil, fmt.Errorf("a manifest of kind %s has no apiVersion", obj["kind"])
	}
	if _, ok := obj["metadata"].(map[string]any); !ok {
		obj["metadata"] = map[string]any{}
	}
	return obj, nil
}

// numbers turns json.Numbers into int64 where they are integers, float64
// elsewhere.
func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	}
	return v
}

// isTestHook reports whether obj is a Helm test hook, which an install
// does not create.
func isTestHook(obj map[string]any) bool {
	md, _ := obj["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	hooks, _ := ann["helm.sh/hook"].(string)
	for _, h := range strings.Split(hooks, ",") {
		switch strings.TrimSpace(h) {
		case "test", "test-success", "test-failure":
			return true
		}
	}
	return false
}

// groupKind is "kind.group" of obj ("kind" for the core group).
func groupKind(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	api, _ := obj["apiVersion"].(string)
	if i := strings.Index(api, "/"); i >= 0 {
		return kind + "." + api[:i]
	}
	return kind
}

// builtinClusterKinds are the built-in kinds that are not namespaced.
var builtinClusterKinds = []string{
	"Namespace", "Node", "PersistentVolume", "ComponentStatus",
	"ClusterRole.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io",
	"CustomResourceDefinition.apiextensions.k8s.io", "APIService.apiregistration.k8s.io",
	"StorageClass.storage.k8s.io", "CSIDriver.storage.k8s.io", "CSINode.storage.k8s.io", "VolumeAttachment.storage.k8s.io",
	"PriorityClass.scheduling.k8s.io", "RuntimeClass.node.k8s.io", "IngressClass.networking.k8s.io",
	"ValidatingWebhookConfiguration.admissionregistration.k8s.io", "MutatingWebhookConfiguration.admissionregistration.k8s.io",
	"ValidatingAdmissionPolicy.admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io",
	"PodSecurityPolicy.policy", "CertificateSigningRequest.certificates.k8s.io",
	"FlowSchema.flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration.flowcontrol.apiserver.k8s.io",
	"TokenReview.authentication.k8s.io", "SelfSubjectReview.authentication.k8s.io",
	"SubjectAccessReview.authorization.k8s.io", "SelfSubjectAccessReview.authorization.k8s.io", "SelfSubjectRulesReview.authorization.k8s.io",
}

// chartClusterKinds is the set of cluster-scoped kinds: the built-in ones
// and those that a CustomResourceDefinition among objs declares with scope
// Cluster.
func chartClusterKinds(objs []map[string]any) map[string]bool {
	set := map[string]bool{}
	for _, k := range builtinClusterKinds {
		set[k] = true
	}
	for _, o := range objs {
		if groupKind(o) != "CustomResourceDefinition.apiextensions.k8s.io" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		names, _ := spec["names"].(map[string]any)
		kind, _ := names["kind"].(string)
		group, _ := spec["group"].(string)
		if scope, _ := spec["scope"].(string); scope == "Cluster" && kind != "" {
			set[kind+"."+group] = true
		}
	}
	return set
}

// sortInstallOrder sorts objs by Helm's install order of their kinds
// (unknown kinds after the known ones, by kind), then by name; equal ones
// keep their order.
func sortInstallOrder(objs []map[string]any) {
	rank := func(o map[string]any) (int, string, string) {
		kind, _ := o["kind"].(string)
		md, _ := o["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		r := slices.Index(releaseutil.InstallOrder, kind)
		if r < 0 {
			r = len(releaseutil.InstallOrder)
		}
		return r, kind, name
	}
	sort.SliceStable(objs, func(i, j int) bool {
		ri, ki, ni := rank(objs[i])
		rj, kj, nj := rank(objs[j])
		if ri != rj {
			return ri < rj
		}
		if ki != kj {
			return ki < kj
		}
		return ni < nj
	})
}
