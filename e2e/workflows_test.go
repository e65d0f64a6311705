package e2e

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

// workflowAndRun is a Workflow and a run of it, in one file.
const workflowAndRun = `apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata:
  name: release
steps:
- name: announce
  type: webhook
  properties:
    url: %s/announce
    data: {event: release}
- name: record
  type: export2config
  properties:
    configName: release-record
    data: {result: recorded}
---
apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: release-1
spec:
  workflowRef: release
`

// dagRun lists the step that needs the version before the step that
// produces it: in DAG mode the input, not the order, decides.
const dagRun = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: pipeline
spec:
  mode: {steps: DAG}
  workflowSpec:
    steps:
    - name: publish
      type: export2config
      inputs:
      - {from: version, parameterKey: data.version}
      properties:
        configName: pipeline-result
        data: {status: published}
    - name: fetch
      type: request
      properties: {url: %s/version}
      outputs:
      - {name: version, valueFrom: response.version}
`

var _ = Describe("Workflows", func() {
	It("runs the steps of a Workflow named by workflowRef", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-workflowref")
		api := NewEndpoint()
		DeferCleanup(api.Close)
		runFile(ns, "release.yaml", fmt.Sprintf(workflowAndRun, api.URL))

		Eventually(fw.Run(ns, "release-1")).Should(And(HavePhase(v1alpha1.WorkflowRunSucceeded),
			HaveStepPhase("announce", v1alpha1.WorkflowStepPhaseSucceeded), HaveStepPhase("record", v1alpha1.WorkflowStepPhaseSucceeded)))
		Expect(api.Hits("/announce")).To(Equal(1))
		var cm corev1.ConfigMap
		Expect(fw.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "release-record"}, &cm)).To(Succeed())
		Expect(cm.Data).To(HaveKeyWithValue("result", "recorded"))

		By("stepflow get, which reads the steps from the Workflow")
		res := fw.Stepflow("-n", ns, "get", "release-1")
		Expect(res.Err()).To(Succeed())
		Expect(res.Stdout).To(And(ContainSubstring("succeeded"),
			MatchRegexp(`announce\s+webhook\s+succeeded`), MatchRegexp(`record\s+export2config\s+succeeded`)), res.String())
	})

	It("passes a step's output to another step's input in DAG mode", func(ctx SpecContext) {
		ns := namespace(ctx, "e2e-dag")
		api := NewEndpoint()
		DeferCleanup(api.Close)
		api.Respond("/version", http.StatusOK, `{"version": "1.2.3"}`)
		runFile(ns, "pipeline.yaml", fmt.Sprintf(dagRun, api.URL))

		Eventually(fw.Run(ns, "pipeline")).Should(HavePhase(v1alpha1.WorkflowRunSucceeded))
		run, err := fw.Run(ns, "pipeline")()
		Expect(err).NotTo(HaveOccurred())
		Expect(run.Status.Mode.Steps).To(Equal(v1alpha1.WorkflowModeDAG))
		fetch, _ := Step(run, "fetch")
		publish, _ := Step(run, "publish")
		Expect(fetch.Outputs).To(ConsistOf(value("version", `"1.2.3"`)))
		Expect(publish.Inputs).To(ConsistOf(value("version", `"1.2.3"`)), "publish records the input it ran with")

		var cm corev1.ConfigMap
		Expect(fw.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "pipeline-result"}, &cm)).To(Succeed())
		Expect(cm.Data).To(Equal(map[string]string{"status": "published", "version": "1.2.3"}))
	})
})

// value matches a v1alpha1.StepOutputValue by name and JSON value.
func value(name, json string) OmegaMatcher {
	return And(HaveField("Name", name), HaveField("Value.Raw", MatchJSON(json)))
}
