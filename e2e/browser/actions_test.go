package browser

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	. "github.com/stepflow-dev/stepflow/e2e/framework"
	"github.com/stepflow-dev/stepflow/pkg/runop"
	"github.com/stepflow-dev/stepflow/pkg/tenancy"
)

// grayRelease is the README's gray release (e2e/grayrelease_test.go runs
// it through the CLI): it deploys, suspends at suspendStep, and
// rollout-promotion continues the rollout when the context says
// continueRollout: true.
const (
	grayRelease = "examples/gray-release.yaml"
	suspendStep = "suspend-3"
)

// deploymentRules let a namespace's runs deploy the gray release there.
var deploymentRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"statefulsets", "deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"services", "configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"get", "list", "watch", "create"}},
}

// greet is a step definition with one required parameter, for the
// launch form.
const greet = `import "vela/builtin"

"greet": {
	type:        "workflow-step"
	description: "Say hello to someone."
}
template: {
	say: builtin.#Message & {$params: message: "hello, \(parameter.who)"}
	parameter: {
		// +usage=Who to greet
		who: string
	}
}
`

var _ = Describe("acting from the web UI", func() {
	It("4. resumes a suspended gray release after setting continueRollout=true (and rollback=false), and sees it succeed", func(ctx SpecContext) {
		ns := "ui-gray"
		tok := tenant(ctx, ns)
		tab := openTab(tok)
		Expect(tenancy.SetUpRunner(ctx, fw.Client, ns, tenancy.DefaultServiceAccount, append(RunnerRules, deploymentRules...))).To(Succeed())
		DeferCleanup(Kubelet(fw.Client, ns, 200*time.Millisecond))
		Expect(fw.Stepflow("-n", ns, "launch", "-f", filepath.Join(fw.Root, grayRelease), "--category", "DEPLOY", "--name", "gray-ui",
			"--run-context", "deployNamespace="+ns, "--run-context", "image=nginx:v1").Err()).To(Succeed())
		Eventually(fw.Run(ns, "gray-ui")).WithTimeout(time.Minute).Should(And(
			HavePhase(v1alpha1.WorkflowRunSuspending), HaveStepPhase(suspendStep, v1alpha1.WorkflowStepPhaseSuspending)))

		tab.open("/runs/" + ns + "/gray-ui")
		tab.waitFor("the run suspended at "+suspendStep, nodePhase(suspendStep)+` === "suspending"`)

		By("setting continueRollout=true and rollback=false with the context form")
		setContext := func(key, value string) {
			GinkgoHelper()
			if !eval[bool](tab, `document.querySelector('[data-testid="context-key"]') !== null`) {
				tab.click(`[data-testid="action-context"]`)
			}
			tab.fill(`[data-testid="context-key"]`, key)
			tab.fill(`[data-testid="context-value"]`, value)
			tab.click(`[data-testid="context-submit"]`)
			tab.click(confirm)
			tab.waitFor("the run's context to show "+key, fmt.Sprintf(
				`[...document.querySelectorAll('[data-testid="run-context"] dt')].some((d) => d.textContent === %s)`, jsString(key)))
		}
		setContext("continueRollout", "true")
		setContext("rollback", "false")
		var detail struct {
			Context map[string]any `json:"context"`
		}
		uiGet(tok, "/ui/api/runs/"+ns+"/gray-ui", &detail)
		Expect(detail.Context).To(And(HaveKeyWithValue("continueRollout", true), HaveKeyWithValue("rollback", false)),
			"the context holds booleans, not the text \"true\"")

		By("resuming with the UI")
		tab.waitFor("Resume enabled", `document.querySelector('[data-testid="action-resume"]')?.disabled === false`)
		tab.click(`[data-testid="action-resume"]`)
		tab.click(confirm)
		tab.waitForWithin(time.Minute, "the run to succeed", runPhase+` === "succeeded"`)
		Expect(eval[string](tab, nodePhase(suspendStep))).To(Equal("succeeded"))
		Expect(eval[bool](tab, `!document.querySelector('[data-testid="action-error"]')`)).To(BeTrue(), "no action failed")
		run, err := fw.Run(ns, "gray-ui")()
		Expect(err).NotTo(HaveOccurred())
		Expect(run.Status.Phase).To(Equal(v1alpha1.WorkflowRunSucceeded))
		Expect(run.Annotations).To(HaveKeyWithValue(runop.AnnotationOperatedBy, "system:serviceaccount:"+ns+":"+operator), "the run says who resumed it")

		By("opening the app's deploys from the run view: of the run's scope, with this run the rollback target now")
		tab.click(`a[href^="/apps/` + ns + `/"]`)
		tab.waitFor("this run, marked the rollback target", `document.querySelector('[data-testid="deploy-row"][data-name="gray-ui"]')?.dataset.target === "true"`)
		Expect(run.Labels).To(HaveKeyWithValue("stepflow.dev/scope", Not(BeEmpty())))
		Expect(eval[string](tab, `new URLSearchParams(location.search).get("scope")`)).To(Equal(run.Labels["stepflow.dev/scope"]))
		Expect(eval[string](tab, `document.querySelector('[data-testid="deploy-row"][data-name="gray-ui"]').textContent`)).To(ContainSubstring("rollback target"))
	})

	It("6. launches a run from a definition's form, and sees it run", func(ctx SpecContext) {
		ns := "ui-launch"
		tab := openTab(tenant(ctx, ns))
		applyDefinition(ns, "greet.cue", greet)

		tab.open("/definitions?namespace=" + ns)
		tab.click(`[data-testid="definition-row"][data-name="greet"] a`)
		field := `[data-testid="field-who"]`
		tab.waitFor("the launch form", `document.querySelector('`+field+`')`)
		if eval[bool](tab, `!document.querySelector('`+field+`').matches("input, textarea")`) {
			field += ` input, ` + field + ` textarea` // the test id is on the field's wrapper
		}
		tab.fill(`[data-testid="run-namespace"]`, ns)
		tab.fill(field, "Ada")
		tab.click(launchBtn)

		tab.waitFor("the new run's view", `location.pathname.startsWith("/runs/`+ns+`/")`)
		tab.waitForWithin(time.Minute, "the launched step to succeed", nodePhase("greet")+` === "succeeded"`)
		tab.waitFor("the run to succeed", runPhase+` === "succeeded"`)
		var runs v1alpha1.WorkflowRunList
		Expect(fw.Client.List(ctx, &runs, client.InNamespace(ns))).To(Succeed())
		Expect(runs.Items).To(HaveLen(1))
		Expect(strings.TrimPrefix(tab.location(), srv.URL)).To(Equal("/runs/" + ns + "/" + runs.Items[0].Name))
		step, ok := Step(&runs.Items[0], "greet")
		Expect(ok).To(BeTrue())
		Expect(step.Message).To(Equal("hello, Ada"))
	})
})
