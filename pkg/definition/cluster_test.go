package definition_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// TestClusterLookup looks definitions of both kinds up on a real API
// server: the run's namespace first, then the system namespace, one kind
// never standing in for the other.
func TestClusterLookup(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{"lookup-app", "lookup-sys", "lookup-other", definition.DefaultSystemNamespace} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil &&
			!strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	create := func(obj client.Object) {
		t.Helper()
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	comp := func(ns, name, template string) {
		t.Helper()
		def := &v1beta1.ComponentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		def.Spec.Workload.Definition = v1beta1.WorkloadGVK{APIVersion: "apps/v1", Kind: "Deployment"}
		if template != "" {
			def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: template}}
		}
		create(def)
	}
	step := func(ns, name, template string) {
		t.Helper()
		def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: template}}
		create(def)
	}
	comp("lookup-app", "worker", "output: {} // app worker\n")
	comp("lookup-sys", "worker", "output: {} // system worker\n")
	comp("lookup-sys", "webservice", "output: {} // system webservice\n")
	step("lookup-app", "webservice", "m: 1 // a step named like the component\n")
	step("lookup-sys", "deploy", "m: 1 // system deploy step\n")
	comp("lookup-app", "empty", "")
	comp(definition.DefaultSystemNamespace, "vela-only", "output: {} // vela-system\n")

	tests := []struct {
		name    string
		kind    definition.Kind
		ns, sys string
		def     string
		want    string // a part of the template, or of the error
		wantErr bool
	}{
		{"namespace first", definition.ComponentKind, "lookup-app", "lookup-sys", "worker", "app worker", false},
		{"then system namespace", definition.ComponentKind, "lookup-app", "lookup-sys", "webservice", "system webservice", false},
		{"the system namespace's own runs", definition.ComponentKind, "lookup-sys", "lookup-sys", "worker", "system worker", false},
		{"another namespace is not searched", definition.ComponentKind, "lookup-other", "lookup-sys", "worker", "system worker", false},
		{"a step definition is not a component", definition.ComponentKind, "lookup-other", "lookup-other", "deploy",
			`no ComponentDefinition "deploy" in namespace "lookup-other"`, true},
		{"a component is not a step definition", definition.StepKind, "lookup-other", "lookup-other", "worker",
			`no WorkflowStepDefinition "worker" in namespace "lookup-other"`, true},
		{"step kind, namespace first", definition.StepKind, "lookup-app", "lookup-sys", "webservice", "a step named like", false},
		{"step kind, then system", definition.StepKind, "lookup-app", "lookup-sys", "deploy", "system deploy step", false},
		{"missing names both namespaces", definition.ComponentKind, "lookup-app", "lookup-sys", "nope",
			`no ComponentDefinition "nope" in namespace "lookup-app" or "lookup-sys"`, true},
		{"no template", definition.ComponentKind, "lookup-app", "lookup-sys", "empty",
			`ComponentDefinition "empty" has no spec.schematic.cue.template`, true},
		{"system namespace defaults to vela-system", definition.ComponentKind, "lookup-app", "", "vela-only", "vela-system", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := definition.Cluster{Reader: env.Client, SystemNamespace: tt.sys}
			def, err := c.ForKind(ctx, tt.ns, tt.kind).Lookup(tt.def)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one saying %q", err, tt.want)
				}
				// A missing name, and only that, is a NotFoundError.
				var nf *definition.NotFoundError
				if errors.As(err, &nf) != strings.HasPrefix(tt.want, "no ") {
					t.Errorf("err %v: NotFoundError is %v", err, errors.As(err, &nf))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if def.Name != tt.def || !strings.Contains(def.Template, tt.want) {
				t.Errorf("got %q: %q, want %q with %q", def.Name, def.Template, tt.def, tt.want)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	for _, k := range definition.Kinds() {
		obj, err := k.New()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := definition.KindOf(obj); err != nil || got != k {
			t.Errorf("KindOf(%s.New()) = %q, %v", k, got, err)
		}
		if _, err := definition.StatusOf(obj); err != nil {
			t.Errorf("StatusOf(%s): %v", k, err)
		}
	}
	if _, err := definition.Kind("TraitDefinition").New(); err == nil || !strings.Contains(err.Error(), "TraitDefinition") {
		t.Errorf("an unknown kind: %v", err)
	}
}

func TestFromObject(t *testing.T) {
	annotated := metav1.ObjectMeta{Name: "web", Annotations: map[string]string{"definition.oam.dev/description": "serves"}}
	cue := &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "output: {}\n"}}
	tests := []struct {
		name     string
		obj      client.Object
		wantType string
		wantErr  string
	}{
		{"component", &v1beta1.ComponentDefinition{ObjectMeta: annotated, Spec: v1beta1.ComponentDefinitionSpec{Schematic: cue}}, "component", ""},
		{"step", &v1beta1.WorkflowStepDefinition{ObjectMeta: annotated, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: cue}}, "workflow-step", ""},
		{"component without schematic", &v1beta1.ComponentDefinition{ObjectMeta: annotated}, "",
			`ComponentDefinition "web" has no spec.schematic.cue.template`},
		{"terraform only", &v1beta1.ComponentDefinition{ObjectMeta: annotated, Spec: v1beta1.ComponentDefinitionSpec{Schematic: &v1beta1.Schematic{}}}, "",
			`ComponentDefinition "web" has no spec.schematic.cue.template`},
		{"not a definition", &corev1.ConfigMap{ObjectMeta: annotated}, "", "*v1.ConfigMap is not a definition object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := definition.FromObject(tt.obj)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Name != "web" || src.Template != "output: {}\n" || src.Type != tt.wantType || src.Description != "serves" {
				t.Errorf("got %+v", src)
			}
		})
	}
}

// A definition the cache has not seen yet (applied just before the run
// that uses it) is read from the API server before the lookup says it is
// not found; without a live reader the lookup does say so.
func TestClusterLookupBehindCache(t *testing.T) {
	ctx := context.Background()
	ns := "lookup-lagging"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fresh"}}
	def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "x: 1\n"}}
	if err := env.Client.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	// A cache that has not caught up holds nothing.
	behind := fake.NewClientBuilder().WithScheme(env.Scheme).Build()
	got, err := definition.Cluster{Reader: behind, Live: env.Client}.For(ctx, ns).Lookup("fresh")
	if err != nil || got.Template != "x: 1\n" {
		t.Fatalf("with a live reader: %+v, %v", got, err)
	}
	_, err = definition.Cluster{Reader: behind}.For(ctx, ns).Lookup("fresh")
	var nf *definition.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("without a live reader: %v, want NotFoundError", err)
	}
	_, err = definition.Cluster{Reader: behind, Live: env.Client}.For(ctx, ns).Lookup("missing")
	if !errors.As(err, &nf) {
		t.Fatalf("a name nowhere: %v, want NotFoundError", err)
	}
}
