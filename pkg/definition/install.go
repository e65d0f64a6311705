package definition

import (
	"context"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1beta1"
)

// InstallDir creates the shipped layout of dir in namespace ns (created if
// missing): dir/*.cue as WorkflowStepDefinitions, dir/components/*.cue as
// ComponentDefinitions; one that exists already is left as it is. It
// returns how many files it installed. `stepflow local` and the load tools
// install the shipped set with it.
func InstallDir(ctx context.Context, c client.Client, dir, ns string) (int, error) {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.cue"))
	if err != nil {
		return 0, err
	}
	components, err := filepath.Glob(filepath.Join(dir, "components", "*.cue"))
	if err != nil {
		return 0, err
	}
	files = append(files, components...)
	for _, f := range files {
		src, err := FromFile(f)
		if err != nil {
			return 0, err
		}
		meta := metav1.ObjectMeta{Name: src.Name, Namespace: ns,
			Annotations: map[string]string{"definition.oam.dev/description": src.Description}}
		schematic := &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: src.Manifest}}
		var def client.Object = &v1beta1.WorkflowStepDefinition{ObjectMeta: meta, Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: schematic}}
		if src.Type == "component" {
			def = &v1beta1.ComponentDefinition{ObjectMeta: meta, Spec: v1beta1.ComponentDefinitionSpec{Schematic: schematic}}
		}
		if err := c.Create(ctx, def); err != nil && !apierrors.IsAlreadyExists(err) {
			return 0, fmt.Errorf("installing %s: %w", f, err)
		}
	}
	return len(files), nil
}
