package config_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
)

// params decodes js into the params struct op do asks for, as the
// evaluator decodes a call's CUE parameters (by json tags).
func params(t *testing.T, f *config.Family, do, js string) any {
	t.Helper()
	p := f.Ops()[do].NewParams()
	if err := json.Unmarshal([]byte(js), p); err != nil {
		t.Fatalf("%s params %s: %v", do, js, err)
	}
	return p
}

// mustRun runs do and returns its $returns.
func mustRun(t *testing.T, f *config.Family, do, ns, js string) map[string]any {
	t.Helper()
	res, err := run(f, do, ns, params(t, f, do, js))
	if err != nil {
		t.Fatalf("%s %s: %v", do, js, err)
	}
	m, ok := res.Returns.(map[string]any)
	if !ok {
		t.Fatalf("%s returned %T", do, res.Returns)
	}
	return m
}

func secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatalf("secret %s/%s: %v", ns, name, err)
	}
	return &s
}

// The Secret of a config without a template is the one KubeVela writes:
// catalog label, empty type label, empty alias and description, the
// properties as JSON in input-properties, type Opaque. Creating it again
// changes nothing and leaves one Secret; new properties replace the old.
func TestCreateWithoutTemplate(t *testing.T) {
	ns := newNamespace(t)
	f := admin("vela-system")
	mustRun(t, f, "create", ns, `{"name":"db","namespace":"`+ns+`","config":{"url":"jdbc:mysql://db:3306","port":3306,"tls":{"on":true}}}`)
	s := secret(t, ns, "db")
	if diff := cmp.Diff(map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: ""}, s.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{config.AnnotationAlias: "", config.AnnotationDescription: ""}, s.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if s.Type != corev1.SecretTypeOpaque {
		t.Errorf("type %q, want Opaque", s.Type)
	}
	if got, want := string(s.Data[config.KeyProperties]), `{"port":3306,"tls":{"on":true},"url":"jdbc:mysql://db:3306"}`; got != want {
		t.Errorf("input-properties %s, want %s", got, want)
	}
	if len(s.Data) != 1 {
		t.Errorf("data keys %v, want only %s", s.Data, config.KeyProperties)
	}
	rv := s.ResourceVersion

	mustRun(t, f, "create", ns, `{"name":"db","namespace":"`+ns+`","config":{"url":"jdbc:mysql://db:3306","port":3306,"tls":{"on":true}}}`)
	if s := secret(t, ns, "db"); s.ResourceVersion != rv {
		t.Errorf("creating the same config again wrote it (resourceVersion %s, then %s)", rv, s.ResourceVersion)
	}
	mustRun(t, f, "create", ns, `{"name":"db","namespace":"`+ns+`","config":{"url":"jdbc:mysql://db2:3306"}}`)
	if got := string(secret(t, ns, "db").Data[config.KeyProperties]); got != `{"url":"jdbc:mysql://db2:3306"}` {
		t.Errorf("after the update input-properties is %s", got)
	}
	if n := len(configSecrets(t, ns)); n != 1 {
		t.Errorf("%d config Secrets, want 1", n)
	}
}

// A config from a template carries the template's name, scope and
// sensitivity and the namespace it came from, and KubeVela's Secret type
// "/NAME"; "NAMESPACE/NAME" names a template in another namespace.
func TestCreateFromTemplate(t *testing.T) {
	ns, templates, other := newNamespace(t), newNamespace(t), newNamespace(t)
	template(t, templates, "helm-repository", "system", false)
	template(t, other, "image-registry", "project", true)
	f := admin(templates)

	mustRun(t, f, "create", ns, `{"name":"charts","namespace":"`+ns+`","template":"helm-repository","config":{"url":"https://charts.example"}}`)
	mustRun(t, f, "create", ns, `{"name":"registry","namespace":"`+ns+`","template":"`+other+`/image-registry","config":{"registry":"r.example"}}`)

	for _, tc := range []struct {
		name, template, scope, sensitive, from, props string
	}{
		{"charts", "helm-repository", "system", "false", templates, `{"url":"https://charts.example"}`},
		{"registry", "image-registry", "project", "true", other, `{"registry":"r.example"}`},
	} {
		s := secret(t, ns, tc.name)
		wantLabels := map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: tc.template, config.LabelScope: tc.scope}
		if diff := cmp.Diff(wantLabels, s.Labels); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", tc.name, diff)
		}
		wantAnn := map[string]string{config.AnnotationAlias: "", config.AnnotationDescription: "",
			config.AnnotationSensitive: tc.sensitive, config.AnnotationTemplateNamespace: tc.from}
		if diff := cmp.Diff(wantAnn, s.Annotations); diff != "" {
			t.Errorf("%s annotations (-want +got):\n%s", tc.name, diff)
		}
		if want := corev1.SecretType("/" + tc.template); s.Type != want {
			t.Errorf("%s type %q, want %q", tc.name, s.Type, want)
		}
		if got := string(s.Data[config.KeyProperties]); got != tc.props {
			t.Errorf("%s input-properties %s, want %s", tc.name, got, tc.props)
		}
	}
}

// Read returns a config's properties; list returns the configs of one
// template in one namespace, by name, with alias and description; delete
// removes the Secret and, as KubeVela's does, the objects its
// objects-reference names. The configs here are Secrets written the way
// KubeVela's `vela config create` writes them, so a config KubeVela made
// is read, listed and deleted by Stepflow.
func TestReadListDeleteKubeVelaConfigs(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	ctx := context.Background()
	output := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "made-by-template"}}
	if err := env.Client.Create(ctx, output); err != nil {
		t.Fatal(err)
	}
	refs := `[{"kind":"ConfigMap","namespace":"` + ns + `","name":"made-by-template","apiVersion":"v1"}]`
	velaConfig(t, ns, "repo-b", "helm-repository", `{"url":"https://b.example"}`, "B", false, refs)
	velaConfig(t, ns, "repo-a", "helm-repository", `{"url":"https://a.example","insecure":true}`, "", false, "")
	velaConfig(t, ns, "secret-repo", "helm-repository", `{"password":"p"}`, "", true, "")
	velaConfig(t, ns, "registry", "image-registry", `{"registry":"r.example"}`, "", false, "")
	velaConfig(t, other, "repo-elsewhere", "helm-repository", `{"url":"https://c.example"}`, "", false, "")
	f := admin("vela-system")

	got := mustRun(t, f, "read", ns, `{"name":"repo-a","namespace":"`+ns+`"}`)
	if diff := cmp.Diff(map[string]any{"config": map[string]any{"url": "https://a.example", "insecure": true}}, got); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}

	got = mustRun(t, f, "list", ns, `{"template":"vela-system/helm-repository","namespace":"`+ns+`"}`)
	want := map[string]any{"configs": []any{
		map[string]any{"name": "repo-a", "alias": "", "description": "", "config": map[string]any{"url": "https://a.example", "insecure": true}},
		map[string]any{"name": "repo-b", "alias": "", "description": "B", "config": map[string]any{"url": "https://b.example"}},
		map[string]any{"name": "secret-repo", "alias": "", "description": "", "config": map[string]any{}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	mustRun(t, f, "delete", ns, `{"name":"repo-b","namespace":"`+ns+`"}`)
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "repo-b"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("repo-b's Secret after delete: %v, want not found", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(output), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the object repo-b's template made, after delete: %v, want not found", err)
	}
	if n := len(configSecrets(t, ns)); n != 3 {
		t.Errorf("%d config Secrets left in %s, want 3", n, ns)
	}
	if n := len(configSecrets(t, other)); n != 1 {
		t.Errorf("%d config Secrets left in %s, want 1", n, other)
	}
}

// velaConfig writes a config Secret as KubeVela core does.
func velaConfig(t *testing.T, ns, name, template, props, description string, sensitive bool, refs string) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: template, config.LabelScope: "system"},
			Annotations: map[string]string{config.AnnotationAlias: "", config.AnnotationDescription: description,
				config.AnnotationSensitive: map[bool]string{true: "true", false: "false"}[sensitive], config.AnnotationTemplateNamespace: "vela-system"},
		},
		Type: corev1.SecretType("/" + template),
		Data: map[string][]byte{config.KeyProperties: []byte(props)},
	}
	if refs != "" {
		s.Data[config.KeyObjectReferences] = []byte(refs)
	}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// Every refusal is permanent and names the config (or template) and its
// namespace; none of them writes anything.
func TestRefusals(t *testing.T) {
	ns, templates := newNamespace(t), newNamespace(t)
	template(t, templates, "helm-repository", "system", false)
	velaConfig(t, ns, "repo", "helm-repository", `{"url":"https://a.example"}`, "", false, "")
	velaConfig(t, ns, "hidden", "helm-repository", `{"password":"p"}`, "", true, "")
	plain := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}, StringData: map[string]string{"k": "v"}}
	if err := env.Client.Create(context.Background(), plain); err != nil {
		t.Fatal(err)
	}
	typed := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "typed",
		Labels: map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelType: ""}},
		Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{config.KeyProperties: []byte(`{}`), "username": []byte("u")}}
	if err := env.Client.Create(context.Background(), typed); err != nil {
		t.Fatal(err)
	}
	f := admin(templates)
	q := `"namespace":"` + ns + `"`
	for _, tc := range []struct {
		name, do, params string
		want             []string
	}{
		{"create from a missing template", "create", `{"name":"x",` + q + `,"template":"nacos","config":{}}`,
			[]string{`config "x" in namespace "` + ns + `"`, `template "nacos" not found in namespace "` + templates + `"`}},
		{"create over a Secret that is not a config", "create", `{"name":"plain",` + q + `,"config":{}}`,
			[]string{`config "plain" in namespace "` + ns + `"`, "is not a config"}},
		{"change of template", "create", `{"name":"repo",` + q + `,"config":{}}`,
			[]string{`config "repo" in namespace "` + ns + `"`, `template of a config cannot be changed (from "helm-repository" to "")`}},
		{"change of Secret type", "create", `{"name":"typed",` + q + `,"config":{}}`,
			[]string{`config "typed" in namespace "` + ns + `"`, `Secret type of a config cannot be changed (from "kubernetes.io/basic-auth" to "Opaque")`}},
		{"create without a name", "create", `{` + q + `,"config":{}}`, []string{`namespace "` + ns + `"`, "name is required"}},
		{"read a missing config", "read", `{"name":"nope",` + q + `}`, []string{`config "nope" in namespace "` + ns + `" not found`}},
		{"read a Secret that is not a config", "read", `{"name":"plain",` + q + `}`, []string{`config "plain" in namespace "` + ns + `"`, "not a config"}},
		{"read a sensitive config", "read", `{"name":"hidden",` + q + `}`, []string{`config "hidden" in namespace "` + ns + `" is sensitive`}},
		{"list without a template", "list", `{` + q + `}`, []string{`namespace "` + ns + `"`, "template is required"}},
		{"delete a missing config", "delete", `{"name":"nope",` + q + `}`, []string{`config "nope" in namespace "` + ns + `" not found`}},
		{"delete a Secret that is not a config", "delete", `{"name":"plain",` + q + `}`, []string{`config "plain" in namespace "` + ns + `"`, "not a config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(f, tc.do, ns, params(t, f, tc.do, tc.params))
			if err == nil {
				t.Fatal("no error")
			}
			var oe *op.Error
			if !op.IsPermanent(err) || !asOpError(err, &oe) {
				t.Errorf("want a permanent *op.Error, got %#v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Nothing was written or deleted.
	if got := string(secret(t, ns, "repo").Data[config.KeyProperties]); got != `{"url":"https://a.example"}` {
		t.Errorf("repo changed: %s", got)
	}
	if s := secret(t, ns, "plain"); s.Labels[config.LabelCatalog] != "" {
		t.Errorf("plain was made a config: %v", s.Labels)
	}
	if n := len(configSecrets(t, ns)); n != 3 {
		t.Errorf("%d config Secrets, want 3 (repo, hidden, typed)", n)
	}
}

func asOpError(err error, target **op.Error) bool {
	e, ok := err.(*op.Error)
	if ok {
		*target = e
	}
	return ok
}

// The classes: create, read and list run again on re-entry; delete runs
// once per attempt.
func TestClasses(t *testing.T) {
	f := admin("vela-system")
	want := map[string]op.Class{"create": op.Idempotent, "read": op.Idempotent, "list": op.Idempotent, "delete": op.Effect}
	got := map[string]op.Class{}
	for do, o := range f.Ops() {
		got[do] = o.Class(o.NewParams())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
}
