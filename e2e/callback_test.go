package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

const brokenStep = `import "vela/op"

"broken": {
	type:        "workflow-step"
	description: "Fail on purpose."
}
template: {
	fail: op.#Fail & {message: "the database is gone"}
}
`

const pauseStep = `import "vela/op"

"pause": {
	type:        "workflow-step"
	description: "Pause for a while."
}
template: {
	pause: op.#Suspend & {duration: parameter.duration}
	parameter: duration: string
}
`

// callbackBody is what a callback receives: the reference's fields
// (name, phase, attributes, runError, rollbackError) and Stepflow's.
type callbackBody struct {
	Name          *string            `json:"name"`
	Namespace     string             `json:"namespace"`
	UID           string             `json:"uid"`
	Event         string             `json:"event"`
	Phase         *string            `json:"phase"`
	Attributes    *map[string]string `json:"attributes"`
	RunError      *string            `json:"runError"`
	RollbackError *string            `json:"rollbackError"`
	Step          *struct {
		Name string `json:"name"`
	} `json:"step"`
}

func decodeBodies(reqs []Request) []callbackBody {
	GinkgoHelper()
	var out []callbackBody
	for _, r := range reqs {
		Expect(r.Method).To(Equal(http.MethodPost))
		Expect(r.IdempotencyKey).NotTo(BeEmpty())
		var b callbackBody
		Expect(json.Unmarshal([]byte(r.Body), &b)).To(Succeed(), r.Body)
		out = append(out, b)
	}
	return out
}

var _ = Describe("A run's callback", func() {
	It("receives the reference's callback body when the run fails", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-callback-body")
		hook := NewEndpoint()
		DeferCleanup(hook.Close)
		applyDefinition(ns, "broken.cue", brokenStep)
		runFile(ns, "failing.yaml", fmt.Sprintf(`apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: failing
spec:
  callback: {url: %s/hook, events: [runFailed]}
  workflowSpec:
    steps:
    - {name: migrate, type: broken}
`, hook.URL))
		Eventually(fw.Run(ns, "failing")).Should(HavePhase(v1alpha1.WorkflowRunFailed))
		Eventually(func() int { return hook.Hits("/hook") }).Should(Equal(1))
		Consistently(func() int { return hook.Hits("/hook") }).Should(Equal(1))

		b := decodeBodies(hook.Requests("/hook"))[0]
		Expect(b.Name).To(HaveValue(Equal("failing")))
		Expect(b.Phase).To(HaveValue(Equal("Failed")))
		Expect(b.Attributes).To(HaveValue(BeEmpty()), "present, as {}")
		Expect(b.RunError).To(HaveValue(ContainSubstring("the database is gone")))
		Expect(b.RollbackError).To(HaveValue(BeEmpty()), "present, empty: the run did not roll back")
		Expect(b.Event).To(Equal("runFailed"))
		Expect(b.Namespace).To(Equal(ns))
		run, err := fw.Run(ns, "failing")()
		Expect(err).NotTo(HaveOccurred())
		Expect(b.UID).To(Equal(string(run.UID)))
		Expect(run.Status.Callback).NotTo(BeNil())
		Expect(run.Status.Callback.Delivered).To(Equal(hook.Requests("/hook")[0].IdempotencyKey))
	})
})

// Serial: it kills the controller every spec shares.
var _ = Describe("Callbacks across a controller killed mid-run", Serial, func() {
	It("deliver every transition at least once, each under one key", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-callback-crash")
		hook := NewEndpoint()
		DeferCleanup(hook.Close)
		applyDefinition(ns, "pause.cue", pauseStep)
		runFile(ns, "paced.yaml", fmt.Sprintf(`apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: paced
spec:
  callback: {url: %s/hook}
  workflowSpec:
    steps:
    - {name: one, type: pause, properties: {duration: 2s}}
    - {name: two, type: pause, properties: {duration: 2s}}
    - {name: three, type: pause, properties: {duration: 2s}}
`, hook.URL))

		By("letting the receiver fail once step one has started, so transitions wait in the outbox")
		Eventually(func() int { return hook.Hits("/hook") }).Should(BeNumerically(">=", 2))
		hook.Respond("/hook", http.StatusServiceUnavailable, "{}")
		Eventually(fw.Run(ns, "paced")).Should(WithTransform(func(r *v1alpha1.WorkflowRun) int32 {
			if r.Status.Callback == nil {
				return 0
			}
			return r.Status.Callback.Pending
		}, BeNumerically(">", 0)))

		By("killing the controller with SIGKILL")
		DeferCleanup(func() {
			if !fw.ControllerRunning() {
				Expect(fw.StartController()).To(Succeed())
			}
		})
		Expect(fw.KillController()).To(Succeed())
		hook.Respond("/hook", http.StatusOK, "{}")

		By("starting a new controller")
		Expect(fw.StartController()).To(Succeed())
		Eventually(fw.ControllerReady).Should(Succeed())
		Eventually(fw.Run(ns, "paced"), "60s").Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
		Eventually(fw.Run(ns, "paced")).Should(WithTransform(func(r *v1alpha1.WorkflowRun) int32 {
			if r.Status.Callback == nil {
				return -1
			}
			return r.Status.Callback.Pending
		}, BeZero()))

		// Deduplicated by key, the receiver has every transition: each
		// key is one transition, whatever number of times it came.
		reqs := hook.Requests("/hook")
		bodies := decodeBodies(reqs)
		byKey := map[string]string{}
		for i, r := range reqs {
			what := bodies[i].Event
			if bodies[i].Step != nil {
				what += " " + bodies[i].Step.Name
			}
			if prev, ok := byKey[r.IdempotencyKey]; ok {
				Expect(what).To(Equal(prev), "one key, one transition")
			}
			byKey[r.IdempotencyKey] = what
		}
		seen := map[string]int{}
		for _, what := range byKey {
			seen[what]++
		}
		for _, want := range []string{"runStarted", "stepStarted one", "stepSucceeded one", "stepStarted two",
			"stepSucceeded two", "stepStarted three", "stepSucceeded three", "runSucceeded"} {
			Expect(seen).To(HaveKeyWithValue(want, 1), "%s under exactly one key; received %v", want, seen)
		}
	})
})
