package kubelet_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/internal/kubelet"
	"github.com/stepflow-dev/stepflow/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

// A StatefulSet with partition P gets the replicas at or above P updated
// and all ready; once P is 0 the update revision becomes the current one,
// as the StatefulSet controller reports a finished rolling update.
func TestStatefulSetPartition(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	labels := map[string]string{"app": "db"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:2"}}}},
		},
	}
	if err := env.Client.Create(ctx, sts); err != nil {
		t.Fatal(err)
	}
	stop := kubelet.Start(env.Client, "default", 50*time.Millisecond)
	defer stop()

	wait := func(ok func(s *appsv1.StatefulSet) bool) *appsv1.StatefulSet {
		t.Helper()
		var got appsv1.StatefulSet
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sts), &got); err == nil && ok(&got) {
				return &got
			}
		}
		t.Fatalf("status never got there: %+v", got.Status)
		return nil
	}
	got := wait(func(s *appsv1.StatefulSet) bool { return s.Status.ObservedGeneration == s.Generation })
	if got.Status.UpdatedReplicas != 3 || got.Status.CurrentRevision != got.Status.UpdateRevision {
		t.Errorf("first rollout: status %+v, want 3 updated and one revision", got.Status)
	}

	// A canary: a new image with partition 1.
	got.Spec.Template.Spec.Containers[0].Image = "db:2"
	got.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(int32(1))
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = wait(func(s *appsv1.StatefulSet) bool { return s.Status.ObservedGeneration == s.Generation })
	if got.Status.UpdatedReplicas != 2 || got.Status.ReadyReplicas != 3 || got.Status.CurrentRevision == got.Status.UpdateRevision {
		t.Errorf("partition 1 of 3: status %+v, want 2 updated, 3 ready, the update revision not yet current", got.Status)
	}

	got.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(int32(0))
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = wait(func(s *appsv1.StatefulSet) bool { return s.Status.ObservedGeneration == s.Generation })
	if got.Status.UpdatedReplicas != 3 || got.Status.CurrentRevision != got.Status.UpdateRevision {
		t.Errorf("partition 0: status %+v, want 3 updated and the update revision current", got.Status)
	}
}
