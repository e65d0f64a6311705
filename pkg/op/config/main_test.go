package config_test

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/config"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// The package's tests share one API server.
var env *testenv.Env

func TestMain(m *testing.M) {
	e, stop := testenv.StartMain()
	env = e
	code := m.Run()
	stop()
	os.Exit(code)
}

// newNamespace creates a fresh namespace for one test (envtest deletes
// none).
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "config-op-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// run calls config op do through op.Direct (so errors have the one
// shape), as step "step" of a run in namespace ns, with family f.
func run(f *config.Family, do, ns string, params any) (op.Result, error) {
	o := f.Ops()[do]
	return op.Direct.Run(context.Background(), &op.Call{
		Name:   op.Name{Provider: "config", Do: do},
		Path:   "test." + do,
		Op:     o,
		Params: params,
		Class:  o.Class(params),
		Step:   op.Step{RunUID: "uid", RunName: "run", Namespace: ns, StepName: "step", StepID: "step-1"},
	})
}

// admin is the family acting with the test's administrator client, with
// templates in templates.
func admin(templates string) *config.Family {
	return config.New(kube.Local(env.Client)).WithTemplateNamespace(templates)
}

// configSecrets lists the config Secrets (catalog label) in ns.
func configSecrets(t *testing.T, ns string) []corev1.Secret {
	t.Helper()
	var l corev1.SecretList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(ns), client.MatchingLabels{config.LabelCatalog: config.CatalogValue}); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// template creates the ConfigMap of config template name in ns, as `vela
// config-template apply` does, with scope and sensitivity.
func template(t *testing.T, ns, name, scope string, sensitive bool) {
	t.Helper()
	sens := "false"
	if sensitive {
		sens = "true"
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: config.TemplatePrefix + name,
			Labels:      map[string]string{config.LabelCatalog: config.CatalogValue, config.LabelScope: scope},
			Annotations: map[string]string{config.AnnotationSensitive: sens, config.AnnotationAlias: "", config.AnnotationDescription: ""},
		},
		Data: map[string]string{"template": "metadata: name: \"" + name + "\"\ntemplate: parameter: {...}\n"},
	}
	if err := env.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
}
