package api_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// TestCRDsOnAPIServer installs the chart's CRDs into a real API server,
// applies every fixture as written (KubeVela-shaped YAML, status included),
// reads it back into the Go types and checks nothing was pruned or changed.
// It needs KUBEBUILDER_ASSETS pointing at kube-apiserver and etcd, as
// printed by hack/control-plane.sh.
func TestCRDsOnAPIServer(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset; run hack/control-plane.sh and export its output")
	}

	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})

	scheme := newScheme(t)
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// Reject unknown fields instead of pruning them, as kubectl apply does.
	c = client.WithFieldValidation(c, metav1.FieldValidationStrict)
	ctx := t.Context()

	namespaces := map[string]bool{"default": true}
	for _, file := range fixtures(t) {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(data, &u.Object); err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(u.Object)
			if err != nil {
				t.Fatal(err)
			}

			if ns := u.GetNamespace(); !namespaces[ns] {
				if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
					t.Fatal(err)
				}
				namespaces[ns] = true
			}

			status, hasStatus := u.Object["status"]
			if err := c.Create(ctx, u); err != nil {
				t.Fatalf("create: %v", err)
			}
			if hasStatus {
				u.Object["status"] = status
				if err := c.Status().Update(ctx, u); err != nil {
					t.Fatalf("update status: %v", err)
				}
			}

			obj, err := scheme.New(u.GroupVersionKind())
			if err != nil {
				t.Fatal(err)
			}
			typed := obj.(client.Object)
			if err := c.Get(ctx, client.ObjectKeyFromObject(u), typed); err != nil {
				t.Fatalf("get: %v", err)
			}
			got, err := json.Marshal(typed)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(withoutMeta(t, want), withoutMeta(t, got)); diff != "" {
				t.Errorf("read back differs (-applied +stored):\n%s", diff)
			}
		})
	}

	t.Run("validation", func(t *testing.T) {
		tests := []struct {
			name    string
			yaml    string
			wantErr string // empty: accepted
		}{
			{
				name:    "unknown mode",
				yaml:    "spec: {mode: {steps: Parallel}}",
				wantErr: "spec.mode.steps",
			},
			{
				name:    "factor is not a decimal",
				yaml:    "spec: {workflowSpec: {steps: [{name: a, type: request, retry: {backoff: {factor: two}}}]}}",
				wantErr: "factor",
			},
			{
				name:    "negative retry limit",
				yaml:    "spec: {workflowSpec: {steps: [{name: a, type: request, retry: {limit: -1}}]}}",
				wantErr: "limit",
			},
			{
				name:    "unknown step field",
				yaml:    "spec: {workflowSpec: {steps: [{name: a, type: request, retries: 3}]}}",
				wantErr: "retries",
			},
			{
				name: "null group mode, as KubeVela allows",
				yaml: "spec: {workflowSpec: {steps: [{name: g, type: step-group, mode: null, subSteps: [{name: a, type: suspend}]}]}}",
			},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal([]byte(tt.yaml), &u.Object); err != nil {
					t.Fatal(err)
				}
				u.SetAPIVersion("core.oam.dev/v1alpha1")
				u.SetKind("WorkflowRun")
				u.SetNamespace("default")
				u.SetName("validation-" + string(rune('a'+i)))
				err := c.Create(ctx, u)
				switch {
				case tt.wantErr == "" && err != nil:
					t.Fatalf("rejected: %v", err)
				case tt.wantErr != "" && err == nil:
					t.Fatalf("accepted, want an error about %q", tt.wantErr)
				case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
					t.Fatalf("error %q does not mention %q", err, tt.wantErr)
				}
			})
		}
	})
}

// withoutMeta is the object in generic form without apiVersion, kind and
// metadata, which the server fills in.
func withoutMeta(t *testing.T, data []byte) any {
	t.Helper()
	m := generic(t, data).(map[string]any)
	delete(m, "apiVersion")
	delete(m, "kind")
	delete(m, "metadata")
	return m
}
