package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

const rolloutRun = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: rollout
spec:
  workflowSpec:
    steps:
    - name: web
      type: apply-and-wait
      properties:
        value:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: web}
          spec:
            replicas: 2
            selector: {matchLabels: {app: web}}
            template:
              metadata: {labels: {app: web}}
              spec:
                containers:
                - {name: web, image: nginx:1.27}
`

var _ = Describe("apply-and-wait on a Deployment", func() {
	It("waits until the Deployment reports its replicas ready, then succeeds", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-rollout")
		runFile(ns, "rollout.yaml", rolloutRun)

		By("waiting for the step to wait for the Deployment")
		Eventually(fw.Run(ns, "rollout")).Should(HaveStepReason("web", "Wait"))
		// No kubelet and no deployment controller: nothing makes it ready.
		Consistently(fw.Run(ns, "rollout")).Should(HaveStepPhase("web", v1alpha1.WorkflowStepPhaseRunning))

		By("reporting the Deployment's replicas ready, as its controller would")
		var dep appsv1.Deployment
		Expect(fw.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &dep)).To(Succeed())
		Expect(dep.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
		dep.Status.ObservedGeneration = dep.Generation
		dep.Status.Replicas, dep.Status.UpdatedReplicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = 2, 2, 2, 2
		Expect(fw.Client.Status().Update(ctx, &dep)).To(Succeed())

		Eventually(fw.Run(ns, "rollout")).WithTimeout(10 * time.Second).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
	})
})
