package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// fixtures are the KubeVela-shaped objects under each version's testdata.
func fixtures(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("v1*", "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no fixtures found")
	}
	return files
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, v1beta1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestRoundTrip decodes each fixture through the scheme into its Go type,
// encodes it again, and checks that no field was lost or changed.
func TestRoundTrip(t *testing.T) {
	decoder := serializer.NewCodecFactory(newScheme(t), serializer.EnableStrict).UniversalDeserializer()

	for _, file := range fixtures(t) {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			obj, gvk, err := decoder.Decode(data, nil, nil)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if gvk.Group != "core.oam.dev" {
				t.Fatalf("decoded into %v", gvk)
			}

			out, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(generic(t, data), generic(t, out)); diff != "" {
				t.Errorf("round trip changed the object (-fixture +encoded):\n%s", diff)
			}

			if cp := obj.DeepCopyObject(); !equality.Semantic.DeepEqual(obj, cp) {
				t.Errorf("DeepCopyObject differs from the original")
			}
		})
	}
}

// generic parses YAML or JSON into plain maps and lists and drops zero
// values, which the Go types may add (suspend: false, startTime: null) but
// which carry no information.
func generic(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	v, _ = dropZero(v)
	return v
}

func dropZero(v any) (any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, false
	case map[string]any:
		for k, e := range v {
			if e, ok := dropZero(e); ok {
				v[k] = e
			} else {
				delete(v, k)
			}
		}
		return v, len(v) > 0
	case []any:
		kept := v[:0]
		for _, e := range v {
			if e, ok := dropZero(e); ok {
				kept = append(kept, e)
			}
		}
		return kept, len(kept) > 0
	case bool:
		return v, v
	case string:
		return v, v != ""
	case float64:
		return v, v != 0
	default:
		return v, true
	}
}
