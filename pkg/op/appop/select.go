package appop

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stepflow-dev/stepflow/pkg/app"
)

// Selector names a component by the TYPE and NAME of its revisionName.
type Selector struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

func (s Selector) String() string { return s.Type + "|" + s.Name }

// Selection is what a step asks of its run's configuration.
type Selection struct {
	// Components to select; none: all of them.
	Components []Selector
	// Policies are names of spec.policies applied in order.
	Policies []string
	// Context is the run context: its keys override the global
	// parameters, and data inputs that are not Global.x read it.
	Context map[string]any
	// Overrides, when not nil, are the keys that override the global
	// parameters instead of Context's.
	Overrides map[string]any
	// Namespace is the run's namespace, where a component with neither a
	// Namespace scope nor a topology policy goes.
	Namespace string
}

// Component is a selected component, resolved and ready to render.
type Component struct {
	Type, Name, Version, RevisionName string
	// Namespace is the component's Namespace scope, else the namespace of
	// the last topology policy applied that names one, else the run's.
	Namespace string
	// Clusters are the last topology policy's clusters; empty: the local
	// cluster.
	Clusters []string
	// Properties are the component's parameter values and data inputs
	// written at their field paths (without the leading "spec.").
	Properties map[string]any
}

// Value is the component as $returns carries it.
func (c Component) Value() map[string]any {
	clusters := make([]any, len(c.Clusters))
	for i, cl := range c.Clusters {
		clusters[i] = cl
	}
	return map[string]any{
		"type": c.Type, "name": c.Name, "version": c.Version, "revisionName": c.RevisionName,
		"namespace": c.Namespace, "clusters": clusters, "properties": c.Properties,
	}
}

// Select resolves the selected components of ac, in the configuration's
// order:
//
//   - {{ Global.x }} resolves from spec.parameterValues with the context's
//     keys over them (ApplicationConfiguration.Globals and Resolved);
//   - override policies replace the parameter values of their components
//     (matched by TYPE|NAME, the version ignored) that have the same
//     name, and add the others; topology policies set the namespace and
//     clusters of every selected component;
//   - each parameter value is written at each of its toFieldPaths, the
//     leading "spec." removed ("spec.image" is properties.image, dotted
//     paths nest, "spec" alone merges an object into the properties), or
//     at properties[NAME] without toFieldPaths; then each data input:
//     "Global.x" is the global x, any other name the context's key.
//
// Values keep their JSON types. Every error names the component, policy
// or placeholder at fault; none of them can pass on a retry.
func Select(ac *app.ApplicationConfiguration, sel Selection) ([]Component, error) {
	overrides := sel.Context
	if sel.Overrides != nil {
		overrides = sel.Overrides
	}
	globals := ac.Globals(overrides)
	r, err := ac.Resolved(globals)
	if err != nil {
		return nil, fmt.Errorf("application configuration %q: %w", ac.Metadata.Name, err)
	}
	revs := make([]app.Revision, len(r.Spec.Components))
	index := map[Selector]int{}
	for i, c := range r.Spec.Components {
		rev, err := app.ParseRevision(c.RevisionName)
		if err != nil {
			return nil, fmt.Errorf("spec.components[%d]: %w", i, err)
		}
		revs[i] = rev
		index[Selector{Type: rev.Type, Name: rev.Name}] = i
	}
	selected := make([]bool, len(revs))
	for _, s := range sel.Components {
		i, ok := index[s]
		if !ok {
			return nil, fmt.Errorf("component %s is not in the application configuration", s)
		}
		selected[i] = true
	}
	if len(sel.Components) == 0 {
		for i := range selected {
			selected[i] = true
		}
	}
	pol, err := applyPolicies(r, sel.Policies)
	if err != nil {
		return nil, err
	}

	var out []Component
	for i, c := range r.Spec.Components {
		if !selected[i] {
			continue
		}
		rev := revs[i]
		key := Selector{Type: rev.Type, Name: rev.Name}
		props := map[string]any{}
		for _, pv := range overridden(c.ParameterValues, pol.overrides[key]) {
			v, err := plain(pv.Value)
			if err != nil {
				return nil, fmt.Errorf("component %s: parameterValues %q: %w", key, pv.Name, err)
			}
			paths := pv.ToFieldPaths
			if len(paths) == 0 {
				props[pv.Name] = v
				continue
			}
			for _, p := range paths {
				if err := setPath(props, p, v); err != nil {
					return nil, fmt.Errorf("component %s: parameterValues %q: %w", key, pv.Name, err)
				}
			}
		}
		for k, in := range c.DataInputs {
			name := in.ValueFrom.DataOutputName
			v, err := dataInput(name, globals, sel.Context)
			if err != nil {
				return nil, fmt.Errorf("component %s: dataInputs[%d]: %w", key, k, err)
			}
			for _, p := range in.ToFieldPaths {
				if err := setPath(props, p, v); err != nil {
					return nil, fmt.Errorf("component %s: dataInputs[%d] (%s): %w", key, k, name, err)
				}
			}
		}
		ns := ""
		for _, s := range c.Scopes {
			if s.ScopeRef.Kind == "Namespace" && s.ScopeRef.Name != "" {
				ns = s.ScopeRef.Name
				break
			}
		}
		if ns == "" {
			ns = pol.namespace
		}
		if ns == "" {
			ns = sel.Namespace
		}
		out = append(out, Component{
			Type: rev.Type, Name: rev.Name, Version: rev.Version, RevisionName: c.RevisionName,
			Namespace: ns, Clusters: append([]string{}, pol.clusters...), Properties: props,
		})
	}
	return out, nil
}

// policies is what the named policies do to the selected components.
type policies struct {
	overrides map[Selector][]app.ParameterValue
	namespace string
	clusters  []string
}

func applyPolicies(r *app.ApplicationConfiguration, names []string) (policies, error) {
	out := policies{overrides: map[Selector][]app.ParameterValue{}}
	byName := map[string]app.Policy{}
	for _, p := range r.Spec.Policies {
		byName[p.Name] = p
	}
	for _, name := range names {
		p, ok := byName[name]
		if !ok {
			return out, fmt.Errorf("policy %q is not in the application configuration's spec.policies", name)
		}
		switch p.Type {
		case app.PolicyOverride:
			o, err := p.Override()
			if err != nil {
				return out, err
			}
			for k, c := range o.Components {
				rev, err := app.ParseRevision(c.RevisionName)
				if err != nil {
					return out, fmt.Errorf("policy %q: properties.components[%d]: %w", name, k, err)
				}
				key := Selector{Type: rev.Type, Name: rev.Name}
				out.overrides[key] = overridden(out.overrides[key], c.ParameterValues)
			}
		case app.PolicyTopology:
			t, err := p.Topology()
			if err != nil {
				return out, err
			}
			if t.Namespace != "" {
				out.namespace = t.Namespace
			}
			out.clusters = append([]string(nil), t.Clusters...)
		default:
			return out, fmt.Errorf("policy %q has type %q; supported types are %s and %s", name, p.Type, app.PolicyTopology, app.PolicyOverride)
		}
	}
	return out, nil
}

// overridden is base with each of over replacing the entry of the same
// name, in place, or added after them.
func overridden(base, over []app.ParameterValue) []app.ParameterValue {
	out := append([]app.ParameterValue(nil), base...)
	for _, o := range over {
		replaced := false
		for i := range out {
			if out[i].Name == o.Name {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// dataInput is the value of a data output: Global.x from globals, any
// other name from the context (its key, or a dotted path into it).
func dataInput(name string, globals, context map[string]any) (any, error) {
	from, key, what := context, name, "the run context"
	if rest, ok := strings.CutPrefix(name, "Global."); ok {
		from, key, what = globals, rest, "spec.parameterValues or the run context"
	}
	if key == "" {
		return nil, fmt.Errorf("dataOutputName %q names nothing", name)
	}
	v, ok := from[key]
	if !ok {
		var cur any = from
		for _, p := range strings.Split(key, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			cur, ok = m[p]
			if !ok {
				break
			}
		}
		v = cur
	}
	if !ok {
		return nil, fmt.Errorf("data output %q has no value: set %q in %s", name, key, what)
	}
	return plain(v)
}

// setPath writes v at path in props, the leading "spec." removed, making
// the objects on the way.
func setPath(props map[string]any, path string, v any) error {
	p := strings.TrimPrefix(path, "spec.")
	if p == "spec" {
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("toFieldPath %q: the value is %T, not an object", path, v)
		}
		for k, e := range obj {
			props[k] = e
		}
		return nil
	}
	parts := strings.Split(p, ".")
	cur := props
	for i, k := range parts {
		if k == "" {
			return fmt.Errorf("toFieldPath %q has an empty segment", path)
		}
		if i == len(parts)-1 {
			cur[k] = v
			return nil
		}
		next, exists := cur[k]
		if !exists {
			m := map[string]any{}
			cur[k], cur = m, m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("toFieldPath %q: %s is already set to a %T, not an object", path, strings.Join(parts[:i+1], "."), next)
		}
		cur = m
	}
	return nil
}

// plain is a fresh copy of a value decoded from JSON, with json.Number
// as int64 when it is whole and fits, else float64.
func plain(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}
