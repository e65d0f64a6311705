package e2e

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

const heldRun = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: held
spec:
  workflowSpec:
    steps:
    - name: hold
      type: suspend
      properties: {message: waiting for someone}
    - name: after
      type: export2config
      properties:
        configName: after-hold
        data: {ran: "yes"}
`

// threeRequests calls three paths of an endpoint, one step after another.
const threeRequests = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: chain
spec:
  workflowSpec:
    steps:
    - name: first
      type: request
      properties: {url: %[1]s/first}
    - name: middle
      type: request
      properties: {url: %[1]s/middle}
    - name: last
      type: request
      properties: {url: %[1]s/last}
`

var _ = Describe("Operations on a run", func() {
	It("terminates a waiting run, which then refuses a resume", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-terminate")
		runFile(ns, "held.yaml", heldRun)
		Eventually(fw.Run(ns, "held")).Should(And(
			HavePhase(v1alpha1.WorkflowRunSuspending), HaveStepPhase("hold", v1alpha1.WorkflowStepPhaseSuspending)))

		By("stepflow terminate")
		res := fw.Stepflow("-n", ns, "terminate", "held")
		Expect(res.Err()).To(Succeed())
		Expect(res.Stdout).To(ContainSubstring("workflowrun %s/held terminated", ns))
		Eventually(fw.Run(ns, "held")).Should(HavePhase(v1alpha1.WorkflowRunTerminated))
		Consistently(fw.Run(ns, "held")).Should(And(
			HavePhase(v1alpha1.WorkflowRunTerminated), HaveStepPhase("hold", v1alpha1.WorkflowStepPhaseFailed)))

		By("stepflow resume, which must fail")
		res = fw.Stepflow("-n", ns, "resume", "held")
		Expect(res.ExitCode).NotTo(BeZero(), res.String())
		Expect(res.Stderr).To(ContainSubstring("cannot resume workflowrun %s/held: the run is finished (terminated)", ns), res.String())
		Consistently(fw.Run(ns, "held")).Should(HavePhase(v1alpha1.WorkflowRunTerminated))
	})

	It("retries a failed run from its failed step without running the steps before it again", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-retry")
		api := NewEndpoint()
		DeferCleanup(api.Close)
		api.Respond("/middle", http.StatusInternalServerError, `{"error": "down"}`)
		runFile(ns, "chain.yaml", fmt.Sprintf(threeRequests, api.URL))

		By("waiting for the middle step to fail the run")
		Eventually(fw.Run(ns, "chain")).Should(And(
			HavePhase(v1alpha1.WorkflowRunFailed), HaveStepPhase("middle", v1alpha1.WorkflowStepPhaseFailed)))
		failed, err := fw.Run(ns, "chain")()
		Expect(err).NotTo(HaveOccurred())
		first, _ := Step(failed, "first")
		middle, _ := Step(failed, "middle")
		Expect(middle.Message).To(ContainSubstring("status 500"))
		firstHits, middleHits := api.Hits("/first"), api.Hits("/middle")
		Expect(firstHits).To(BeNumerically(">=", 1))
		Expect(middleHits).To(BeNumerically(">=", 1))
		Expect(api.Hits("/last")).To(BeZero())

		By("fixing the endpoint and running stepflow retry --from-step middle")
		api.Respond("/middle", http.StatusOK, `{}`)
		res := fw.Stepflow("-n", ns, "retry", "chain", "--from-step", "middle")
		Expect(res.Err()).To(Succeed())
		Eventually(fw.Run(ns, "chain")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))

		retried, err := fw.Run(ns, "chain")()
		Expect(err).NotTo(HaveOccurred())
		firstAgain, _ := Step(retried, "first")
		middleAgain, _ := Step(retried, "middle")
		Expect(firstAgain.ID).To(Equal(first.ID), "the first step keeps its attempt")
		Expect(middleAgain.ID).NotTo(Equal(middle.ID), "the middle step runs a new attempt")
		Expect(middleAgain.Attempt).To(BeNumerically(">", middle.Attempt))
		Expect(api.Hits("/first")).To(Equal(firstHits), "the first step is not run again")
		Expect(api.Hits("/middle")).To(BeNumerically(">", middleHits))
		Expect(api.Hits("/last")).To(BeNumerically(">=", 1))
	})
})
