// Package kubelet stands in for the kubelets and workload controllers that
// a bare control plane (etcd and kube-apiserver, as envtest and `stepflow
// local` start) does not run: nothing else would ever report a workload's
// pods up, so no rollout would finish. It writes the status a StatefulSet
// or Deployment controller would write once the pods are running. It is
// for demos and end-to-end tests, never for a real cluster.
package kubelet

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Start stands in for the kubelets and workload controllers a control
// plane of envtest does not have: every interval it reports each
// StatefulSet and Deployment in namespace as a workload controller would
// once its pods are up: a StatefulSet's replicas at or above its partition
// updated (to revision NAME-GENERATION, which becomes the current one once
// the partition is 0) and all ready, a Deployment rolled out. Stop it with the returned function.
func Start(c client.Client, namespace string, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			markReady(ctx, c, namespace)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func markReady(ctx context.Context, c client.Client, namespace string) {
	var sets appsv1.StatefulSetList
	if err := c.List(ctx, &sets, client.InNamespace(namespace)); err == nil {
		for i := range sets.Items {
			s := &sets.Items[i]
			replicas := int32(1)
			if s.Spec.Replicas != nil {
				replicas = *s.Spec.Replicas
			}
			partition := int32(0)
			if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
				partition = min(*ru.Partition, replicas)
			}
			want := appsv1.StatefulSetStatus{
				ObservedGeneration: s.Generation,
				Replicas:           replicas,
				ReadyReplicas:      replicas,
				AvailableReplicas:  replicas,
				CurrentReplicas:    partition,
				UpdatedReplicas:    replicas - partition,
				CurrentRevision:    s.Status.CurrentRevision,
				UpdateRevision:     fmt.Sprintf("%s-%d", s.Name, s.Generation),
			}
			if want.CurrentRevision == "" || partition == 0 {
				// every pod runs the update revision: it is current
				want.CurrentRevision = want.UpdateRevision
			}
			if s.Status.ObservedGeneration == want.ObservedGeneration && s.Status.UpdatedReplicas == want.UpdatedReplicas &&
				s.Status.ReadyReplicas == want.ReadyReplicas && s.Status.Replicas == want.Replicas &&
				s.Status.CurrentRevision == want.CurrentRevision && s.Status.UpdateRevision == want.UpdateRevision {
				continue
			}
			s.Status = want
			_ = c.Status().Update(ctx, s)
		}
	}
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(namespace)); err == nil {
		for i := range deps.Items {
			d := &deps.Items[i]
			replicas := int32(1)
			if d.Spec.Replicas != nil {
				replicas = *d.Spec.Replicas
			}
			if d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == replicas && d.Status.AvailableReplicas == replicas {
				continue
			}
			d.Status.ObservedGeneration = d.Generation
			d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = replicas, replicas, replicas, replicas
			_ = c.Status().Update(ctx, d)
		}
	}
}
