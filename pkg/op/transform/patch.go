package transform

import (
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

// PatchObject returns obj with patch applied. When obj's apiVersion and kind
// name a type in client-go's scheme (the built-in kinds) the patch is a
// strategic merge patch, so lists with a merge key (containers, env, ports,
// ...) merge by that key; for any other kind it is a JSON merge patch
// (MergePatch). Neither argument is changed.
func PatchObject(obj, patch map[string]any) (map[string]any, error) {
	doc, err := JSONObject(obj)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	p, err := JSONObject(patch)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	typed, ok := builtinType(doc)
	if !ok {
		return MergePatch(doc, p), nil
	}
	out, err := strategicpatch.StrategicMergeMapPatch(doc, p, typed)
	if err != nil {
		return nil, fmt.Errorf("strategic merge patch: %w", err)
	}
	return out, nil
}

// builtinType returns a zero value of obj's Go type when client-go's scheme
// knows its apiVersion and kind.
func builtinType(obj map[string]any) (any, bool) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		return nil, false
	}
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	if !scheme.Scheme.Recognizes(gvk) {
		return nil, false
	}
	typed, err := scheme.Scheme.New(gvk)
	if err != nil {
		return nil, false
	}
	return typed, true
}

// MergePatch applies a JSON merge patch (RFC 7386) to doc: a null in patch
// removes the field, an object merges into the object at the same place, and
// anything else (lists included) replaces what is there. It returns a new
// map; doc and patch are not changed, though parts of them that the patch
// leaves alone are shared with the result.
func MergePatch(doc, patch map[string]any) map[string]any {
	out := maps.Clone(doc)
	if out == nil {
		out = map[string]any{}
	}
	for k, pv := range patch {
		if pv == nil {
			delete(out, k)
			continue
		}
		pm, isMap := pv.(map[string]any)
		if !isMap {
			out[k] = pv
			continue
		}
		dm, _ := out[k].(map[string]any)
		out[k] = MergePatch(dm, pm)
	}
	return out
}

// JSONObject returns a deep copy of m holding only the types encoding/json
// decodes to (map[string]any, []any, string, bool, int64, float64, nil),
// which is what Kubernetes' unstructured objects and patch code accept.
// Values decoded from CUE are already of those types, save bytes (encoded as
// base64 strings, as JSON does) and numbers too large for 64 bits; values
// built in Go (int, map[string]string, ...) are converted.
func JSONObject(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	v, err := jsonValue(m)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int64, float64:
		return x, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case *big.Int:
		if !x.IsInt64() {
			return nil, fmt.Errorf("integer %s does not fit in 64 bits", x)
		}
		return x.Int64(), nil
	case *big.Float:
		f, _ := x.Float64()
		return f, nil
	}
	return reflectValue(reflect.ValueOf(v))
}

// reflectValue converts the Go types that have no case in jsonValue: named
// and sized numbers, typed maps and slices, pointers.
func reflectValue(rv reflect.Value) (any, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d does not fit in 64 bits", u)
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return jsonValue(rv.Elem().Interface())
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map keys must be strings, not %s", rv.Type().Key())
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			c, err := jsonValue(it.Value().Interface())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", it.Key().String(), err)
			}
			out[it.Key().String()] = c
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			c, err := jsonValue(rv.Index(i).Interface())
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", rv.Type())
}
