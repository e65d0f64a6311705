package definition_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// TestClusterList lists what runs of a namespace see on a real API
// server: the namespace's own definitions hide the system namespace's of
// the same name, another namespace's are not seen, and the kinds stay
// apart.
func TestClusterList(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{"list-app", "list-sys", "list-other"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	cue := &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: "m: 1\n"}}
	for _, obj := range []client.Object{
		&v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "list-app", Name: "deploy"}, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: cue}},
		&v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "list-sys", Name: "deploy"}, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: cue}},
		&v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "list-sys", Name: "apply"}, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: cue}},
		&v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "list-other", Name: "zz-elsewhere"}, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: cue}},
		&v1beta1.ComponentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "list-sys", Name: "worker"}, Spec: v1beta1.ComponentDefinitionSpec{Schematic: cue}},
	} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, ns string
		kind     definition.Kind
		want     []string // namespace/name, and "system" when from the system namespace
	}{
		{"the namespace's own hides the system one", "list-app", definition.StepKind,
			[]string{"list-sys/apply system", "list-app/deploy"}},
		{"no namespace: the system namespace's", "", definition.StepKind,
			[]string{"list-sys/apply system", "list-sys/deploy system"}},
		{"the system namespace's own runs", "list-sys", definition.StepKind,
			[]string{"list-sys/apply", "list-sys/deploy"}},
		{"components", "list-app", definition.ComponentKind, []string{"list-sys/worker system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := definition.Cluster{Reader: env.Client, SystemNamespace: "list-sys"}.ForKind(ctx, tc.ns, tc.kind).List()
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, v := range got {
				n := v.Object.GetNamespace() + "/" + v.Object.GetName()
				if v.System {
					n += " system"
				}
				names = append(names, n)
			}
			if d := cmp.Diff(tc.want, names); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
