package e2e

import (
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

// approvalDefinition is the approval pattern in the flat vela/op dialect:
// file an approval request (an effect, sent once per step attempt), suspend
// until someone resumes the run, then go on or roll back as the run context
// variable decision says.
const approvalDefinition = `import (
	"vela/op"
	"encoding/json"
)

"approval": {
	type:        "workflow-step"
	description: "Ask for an approval, wait for it, then continue or roll back as context.decision says."
}
template: {
	ask: op.#HTTPPost & {
		url: parameter.url
		request: {
			body: json.Marshal({run: context.name, step: context.stepSessionID})
			header: "Content-Type": "application/json"
		}
	}
	wait: op.#Suspend & {message: "waiting for approval"}
	context: decision: *"continue" | "rollback"
	if context.decision == "rollback" {
		rollback: op.#Fail & {message: "rolled back by the approver"}
	}
	parameter: url: string
}
`

// approvalRun asks for an approval, then promotes with the shipped webhook.
const approvalRun = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: %[1]s
spec:
  workflowSpec:
    steps:
    - name: approve
      type: approval
      properties:
        url: %[2]s/approvals/%[1]s
    - name: promote
      type: webhook
      properties:
        url: %[2]s/promote/%[1]s
        data: {run: %[1]s}
`

var _ = Describe("An approval step", func() {
	var (
		ns        string
		approvals *Endpoint
	)

	BeforeEach(func(ctx SpecContext) {
		ns = namespace(ctx, "e2e-approval")
		approvals = NewEndpoint()
		DeferCleanup(approvals.Close)
		applyDefinition(ns, "approval.cue", approvalDefinition)
	})

	DescribeTable("asks once, suspends, and goes on or rolls back as context.decision says after a resume",
		func(decision string, want v1alpha1.WorkflowRunPhase, approve v1alpha1.WorkflowStepPhase, message OmegaMatcher, promotions int) {
			name := "release-" + decision
			runFile(ns, name+".yaml", fmt.Sprintf(approvalRun, name, approvals.URL))

			By("waiting for the approval step to suspend")
			Eventually(fw.Run(ns, name)).Should(HaveStepPhase("approve", v1alpha1.WorkflowStepPhaseSuspending))
			run, err := fw.Run(ns, name)()
			Expect(err).NotTo(HaveOccurred())
			approveStep, _ := Step(run, "approve")
			asked := approvals.Requests("/approvals/" + name)
			Expect(asked).To(HaveLen(1))
			var body struct{ Run, Step string }
			Expect(json.Unmarshal([]byte(asked[0].Body), &body)).To(Succeed())
			Expect(body.Run).To(Equal(name))
			Expect(body.Step).To(Equal(approveStep.ID), "the request carries context.stepSessionID, the step attempt's id")
			Expect(asked[0].IdempotencyKey).NotTo(BeEmpty())

			By("stepflow context set decision=" + decision + ", then stepflow resume")
			Expect(fw.Stepflow("-n", ns, "context", "set", name, "decision="+decision).Err()).To(Succeed())
			Expect(fw.Stepflow("-n", ns, "resume", name).Err()).To(Succeed())

			Eventually(fw.Run(ns, name)).Should(And(HavePhase(want), HaveStepPhase("approve", approve)))
			run, err = fw.Run(ns, name)()
			Expect(err).NotTo(HaveOccurred())
			approveStep, _ = Step(run, "approve")
			Expect(approveStep.Message).To(message)
			Expect(approvals.Hits("/approvals/"+name)).To(Equal(1), "the approval request is an effect: sent once per step attempt")
			Expect(approvals.Hits("/promote/" + name)).To(Equal(promotions))
		},
		Entry("continue: the run goes on and succeeds", "continue",
			v1alpha1.WorkflowRunSucceeded, v1alpha1.WorkflowStepPhaseSucceeded, Not(ContainSubstring("rolled back")), 1),
		Entry("rollback: the step fails through op.#Fail, and with it the run", "rollback",
			v1alpha1.WorkflowRunFailed, v1alpha1.WorkflowStepPhaseFailed, ContainSubstring("rolled back by the approver"), 0),
	)
})
