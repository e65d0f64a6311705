package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

// notifyThenPause POSTs, then pauses, in one step: a controller that dies
// during the pause must not POST again when the step is evaluated anew.
const notifyThenPause = `import (
	"vela/op"
	"encoding/json"
)

"notify-then-pause": {
	type:        "workflow-step"
	description: "POST a notification, then pause for five seconds."
}
template: {
	notify: op.#HTTPPost & {
		url: parameter.url
		request: body: json.Marshal({step: context.stepSessionID})
	}
	pause: op.#Suspend & {duration: "5s"}
	parameter: url: string
}
`

const crashRun = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: resilient
spec:
  workflowSpec:
    steps:
    - name: notify
      type: notify-then-pause
      properties: {url: %[1]s/notify}
    - name: after
      type: webhook
      properties:
        url: %[1]s/after
        data: {step: after}
`

// Serial: it kills the controller every spec shares.
var _ = Describe("A controller killed mid-run", Serial, func() {
	It("is replaced by a new one that finishes the run without repeating its effects", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-crash")
		api := NewEndpoint()
		DeferCleanup(api.Close)
		applyDefinition(ns, "notify-then-pause.cue", notifyThenPause)
		runFile(ns, "resilient.yaml", fmt.Sprintf(crashRun, api.URL))

		By("waiting for the step to pause after its POST")
		Eventually(fw.Run(ns, "resilient")).Should(HaveStepPhase("notify", v1alpha1.WorkflowStepPhaseSuspending))
		Expect(api.Hits("/notify")).To(Equal(1))

		By("killing the controller with SIGKILL")
		// Whatever happens next, the specs after this one need a controller.
		DeferCleanup(func() {
			if !fw.ControllerRunning() {
				Expect(fw.StartController()).To(Succeed())
			}
		})
		Expect(fw.KillController()).To(Succeed())
		Expect(fw.Run(ns, "resilient")()).To(HaveStepPhase("notify", v1alpha1.WorkflowStepPhaseSuspending))

		By("starting a new controller")
		Expect(fw.StartController()).To(Succeed())
		Eventually(fw.ControllerReady).Should(Succeed())

		Eventually(fw.Run(ns, "resilient")).Should(And(HavePhase(v1alpha1.WorkflowRunSucceeded),
			HaveStepPhase("notify", v1alpha1.WorkflowStepPhaseSucceeded), HaveStepPhase("after", v1alpha1.WorkflowStepPhaseSucceeded)))
		Expect(api.Hits("/notify")).To(Equal(1), "the POST is replayed from the journal, not sent again")
		Expect(api.Hits("/after")).To(Equal(1))
	})
})
