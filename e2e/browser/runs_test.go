package browser

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
)

// pipeline is a DAG with a group: prepare, then build and test side by
// side, then the release group (canary, then promote), then an approval
// that suspends the run, and an announcement still pending behind it.
const pipeline = `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: pipeline
spec:
  mode: {steps: DAG}
  workflowSpec:
    steps:
    - {name: prepare, type: print-message-in-status, properties: {message: "sources checked out"}}
    - {name: build, type: print-message-in-status, dependsOn: [prepare], properties: {message: "image built"}}
    - {name: test, type: print-message-in-status, dependsOn: [prepare], properties: {message: "412 tests passed"}}
    - name: release
      type: step-group
      dependsOn: [build, test]
      subSteps:
      - {name: canary, type: print-message-in-status, properties: {message: "1 of 3 replicas updated"}}
      - {name: promote, type: print-message-in-status, dependsOn: [canary], properties: {message: "3 of 3 replicas updated"}}
    - {name: approve, type: suspend, dependsOn: [release], properties: {message: "approve the announcement"}}
    - {name: announce, type: print-message-in-status, dependsOn: [approve], properties: {message: "announced"}}
`

// awaitConfig waits until ConfigMap parameter.name says ready: "true".
const awaitConfig = `import (
	"vela/kube"
	"vela/builtin"
)

"await-config": {
	type:        "workflow-step"
	description: "Wait until a ConfigMap says ready."
}
template: {
	read: kube.#Read & {$params: value: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		metadata: {name: parameter.name, namespace: context.namespace}
	}}
	wait: builtin.#ConditionalWait & {$params: {
		continue: read.$returns.value.data.ready == "true"
		message:  "waiting for ConfigMap \(parameter.name) to say ready"
	}}
	parameter: name: string
}
`

// noisyFailure logs two lines, then fails.
const noisyFailure = `import "vela/op"

"noisy-failure": {
	type:        "workflow-step"
	description: "Log what it tries, then fail."
}
template: {
	connect: op.#Log & {data: "connecting to db.internal:5432"}
	refused: op.#Log & {data: "db.internal refused: too many connections"}
	fail: op.#Fail & {message: "the database is gone"}
}
`

var _ = Describe("the web UI", func() {
	It("1. shows a run created after the page loaded in the run list, live, without a reload", func(ctx SpecContext) {
		ns := "ui-list"
		tab := openTab(tenant(ctx, ns))
		runFile(ns, "first.yaml", messageRun("first"))

		tab.open("/?namespace=" + ns)
		tab.waitFor("run first in the list", row("first"))
		tab.waitFor("the list's event stream to be live", isLive)
		tab.markPage()

		By("creating a run while the page is open, a second after the first (creation times have seconds)")
		first, err := fw.Run(ns, "first")()
		Expect(err).NotTo(HaveOccurred())
		time.Sleep(time.Until(first.CreationTimestamp.Add(time.Second)))
		runFile(ns, "second.yaml", messageRun("second"))
		tab.waitFor("run second in the list", row("second"))
		tab.waitFor("run second to show succeeded", rowPhase("second")+` === "succeeded"`)
		Expect(eval[[]string](tab, `[...document.querySelectorAll('`+runRow+`')].map((r) => r.dataset.name)`)).
			To(Equal([]string{"second", "first"}), "newest first")
		Expect(tab.samePage()).To(BeTrue(), "the page was not reloaded")
	})

	It("2. draws a run's graph with its nodes, edges and phases, and opens a step", func(ctx SpecContext) {
		ns := "ui-graph"
		tab := openTab(tenant(ctx, ns))
		runFile(ns, "pipeline.yaml", pipeline)
		Eventually(fw.Run(ns, "pipeline")).Should(HaveStepPhase("approve", v1alpha1.WorkflowStepPhaseSuspending))

		tab.open("/runs/" + ns + "/pipeline")
		tab.waitFor("the graph with the approval suspending", nodePhase("approve")+` === "suspending"`)
		phases := eval[map[string]string](tab, `Object.fromEntries([...document.querySelectorAll('`+stepNode+`')].map((n) => [n.dataset.step, n.dataset.phase]))`)
		Expect(phases).To(Equal(map[string]string{
			"prepare": "succeeded", "build": "succeeded", "test": "succeeded",
			"release": "succeeded", "canary": "succeeded", "promote": "succeeded",
			"approve": "suspending", "announce": "pending",
		}))
		By("reading the edges: each title says from → to (kind)")
		edges := eval[[]string](tab, `[...document.querySelectorAll("svg .edge title")].map((t) => t.textContent.trim()).sort()`)
		Expect(edges).To(ConsistOf(
			"prepare → build (dependsOn)", "prepare → test (dependsOn)",
			"build → release (dependsOn)", "test → release (dependsOn)",
			"canary → promote (dependsOn)",
			"release → approve (dependsOn)", "approve → announce (dependsOn)",
		))
		By("finding the group's sub-steps drawn inside its box")
		inside := eval[bool](tab, `(() => {
			const box = (n) => n.querySelector("rect").getBoundingClientRect();
			const g = box(`+node("release")+`);
			return ["canary", "promote"].every((s) => {
				const b = box(document.querySelector('`+stepNode+`[data-step="' + s + '"]'));
				return b.left >= g.left && b.right <= g.right && b.top >= g.top && b.bottom <= g.bottom;
			});
		})()`)
		Expect(inside).To(BeTrue(), "canary and promote are inside the release group's box")
		Expect(eval[string](tab, runPhase)).To(Equal("suspending"))

		By("clicking a step opens its details")
		tab.click(stepNode + `[data-step="approve"]`)
		tab.waitFor("the approval's panel", `document.querySelector('`+stepPanel+`')?.textContent.includes("approve the announcement")`)
		Expect(tab.location()).To(HaveSuffix("/runs/" + ns + "/pipeline/steps/approve"))

		if os.Getenv("STEPFLOW_UPDATE_SCREENSHOT") == "1" {
			By("writing the README's screenshot, docs/img/run-graph.png")
			png, err := tab.screenshot()
			Expect(err).NotTo(HaveOccurred())
			Expect(os.MkdirAll(filepath.Join(fw.Root, "docs", "img"), 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(fw.Root, "docs", "img", "run-graph.png"), png, 0o644)).To(Succeed())
		}
	})

	It("3. shows a step go from running to succeeded without a reload", func(ctx SpecContext) {
		ns := "ui-live-step"
		tab := openTab(tenant(ctx, ns))
		applyDefinition(ns, "await-config.cue", awaitConfig)
		gate := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gate"}, Data: map[string]string{"ready": "false"}}
		Expect(fw.Client.Create(ctx, gate)).To(Succeed())
		runFile(ns, "gated.yaml", `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: gated
spec:
  workflowSpec:
    steps:
    - {name: wait-for-gate, type: await-config, properties: {name: gate}}
    - {name: after, type: print-message-in-status, properties: {message: "the gate opened"}}
`)

		tab.open("/runs/" + ns + "/gated")
		tab.waitFor("the gated step running", nodePhase("wait-for-gate")+` === "running"`)
		Expect(eval[string](tab, nodePhase("after"))).To(Equal("pending"))
		tab.markPage()

		By("opening the gate")
		gate.Data["ready"] = "true"
		Expect(fw.Client.Update(ctx, gate)).To(Succeed())
		tab.waitFor("the gated step succeeded", nodePhase("wait-for-gate")+` === "succeeded"`)
		tab.waitFor("the next step succeeded", nodePhase("after")+` === "succeeded"`)
		tab.waitFor("the run succeeded", runPhase+` === "succeeded"`)
		Expect(tab.samePage()).To(BeTrue(), "the page was not reloaded")
	})

	It("5. shows a failed step's message and its log lines", func(ctx SpecContext) {
		ns := "ui-failed"
		tab := openTab(tenant(ctx, ns))
		applyDefinition(ns, "noisy-failure.cue", noisyFailure)
		runFile(ns, "broken.yaml", `apiVersion: core.oam.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: broken
spec:
  workflowSpec:
    steps:
    - {name: migrate, type: noisy-failure}
`)
		Eventually(fw.Run(ns, "broken")).Should(HavePhase(v1alpha1.WorkflowRunFailed))

		By("following a deep link to the failed step")
		tab.open("/runs/" + ns + "/broken/steps/migrate")
		tab.waitFor("the step failed in the graph", nodePhase("migrate")+` === "failed"`)
		tab.waitFor("the step's message", `document.querySelector('`+stepPanel+` `+stepMsg+`')?.textContent.includes("the database is gone")`)
		tab.waitFor("the step's two log lines", `document.querySelectorAll('`+stepPanel+` `+logLine+`').length >= 2`)
		lines := eval[[]string](tab, `[...document.querySelectorAll('`+stepPanel+` `+logLine+`')].map((l) => l.textContent)`)
		Expect(lines).To(ContainElements(
			ContainSubstring("connecting to db.internal:5432"),
			ContainSubstring("db.internal refused: too many connections")))
	})
})
