package controller

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// DebugConfigMapName holds the evaluated values of the step attempts of a
// run annotated for debugging, one key per step.
func DebugConfigMapName(run string) string { return "workflow-" + run + "-debug" }

// debugValues collects the evaluated values of one tick (engine.Debug); the
// reconciler writes them in one patch after the tick.
type debugValues map[string]string

func (d debugValues) StepValue(step, stepID string, value any) {
	b, err := json.Marshal(map[string]any{"id": stepID, "value": value})
	if err != nil {
		b = []byte(fmt.Sprintf(`{"id": %q, "error": %q}`, stepID, err.Error()))
	}
	d[step] = string(b)
}

func (d debugValues) save(ctx context.Context, c client.Client, run *v1alpha1.WorkflowRun) error {
	if len(d) == 0 {
		return nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: DebugConfigMapName(run.Name), Namespace: run.Namespace,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(run, v1alpha1.GroupVersion.WithKind("WorkflowRun"))},
	}, Data: d}
	patch, err := json.Marshal(map[string]any{"data": map[string]string(d)})
	if err != nil {
		return err
	}
	err = c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch))
	if apierrors.IsNotFound(err) {
		err = c.Create(ctx, cm)
	}
	return err
}
