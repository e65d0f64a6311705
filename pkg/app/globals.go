package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// placeholder matches {{ Global.a.b }}, spaces optional. Other {{ ... }}
// expressions are not Stepflow's and are left as they are.
var placeholder = regexp.MustCompile(`\{\{\s*Global\.([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)\s*\}\}`)

// Globals are the values {{ Global.x }} resolves to: spec.parameterValues,
// each overridden by the key of the same name in the run context.
func (ac *ApplicationConfiguration) Globals(context map[string]any) map[string]any {
	g := make(map[string]any, len(ac.Spec.ParameterValues)+len(context))
	for _, pv := range ac.Spec.ParameterValues {
		g[pv.Name] = pv.Value
	}
	for k, v := range context {
		g[k] = v
	}
	return g
}

// Resolved returns a copy of the configuration with every {{ Global.x }} in
// its components, policies and workflow steps replaced from globals (see
// Globals); spec.parameterValues themselves are left as they are. A string
// that is exactly one placeholder takes the value with its JSON type; a
// placeholder inside a longer string is replaced by the value's text (a
// string as is, anything else as JSON). A placeholder without a value is an
// error naming it and where it is.
func (ac *ApplicationConfiguration) Resolved(globals map[string]any) (*ApplicationConfiguration, error) {
	js, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := decodeNumbers(js, &doc); err != nil {
		return nil, err
	}
	spec, _ := doc["spec"].(map[string]any)
	for _, field := range []string{"components", "policies", "workflow"} {
		if v, ok := spec[field]; ok {
			r, err := resolve(v, globals, "spec."+field)
			if err != nil {
				return nil, err
			}
			spec[field] = r
		}
	}
	if js, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	var out ApplicationConfiguration
	if err := decodeNumbers(js, &out); err != nil {
		return nil, fmt.Errorf("after resolving {{ Global }} placeholders: %w", err)
	}
	return &out, nil
}

func decodeNumbers(js []byte, into any) error {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	return d.Decode(into)
}

// resolve replaces placeholders in v, a value decoded from JSON; path names
// where v is for errors.
func resolve(v any, globals map[string]any, path string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := resolve(e, globals, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := resolve(e, globals, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case string:
		return resolveString(v, globals, path)
	}
	return v, nil
}

func resolveString(s string, globals map[string]any, path string) (any, error) {
	if m := placeholder.FindStringSubmatchIndex(s); m != nil && m[0] == 0 && m[1] == len(s) {
		return lookup(globals, s[m[2]:m[3]], path)
	}
	var firstErr error
	out := placeholder.ReplaceAllStringFunc(s, func(ph string) string {
		key := placeholder.FindStringSubmatch(ph)[1]
		v, err := lookup(globals, key, path)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return ph
		}
		if str, ok := v.(string); ok {
			return str
		}
		js, err := json.Marshal(v)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: {{ Global.%s }}: %w", path, key, err)
			}
			return ph
		}
		return string(js)
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// lookup finds a.b.c in globals, descending into objects.
func lookup(globals map[string]any, key, path string) (any, error) {
	parts := strings.Split(key, ".")
	var cur any = globals
	for i, p := range parts {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: {{ Global.%s }}: Global.%s is not an object", path, key, strings.Join(parts[:i], "."))
		}
		if cur, ok = obj[p]; !ok {
			return nil, fmt.Errorf("%s: {{ Global.%s }} has no value: set %q in spec.parameterValues or in the run context", path, key, strings.Join(parts[:i+1], "."))
		}
	}
	return cur, nil
}
