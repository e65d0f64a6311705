package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/e2e/framework"
)

// systemNamespace receives the shipped definitions; the controller looks
// there for step types a run's namespace does not define.
const systemNamespace = "vela-system"

// controllerLogLines is how much of the controller's log a failure shows.
const controllerLogLines = 60

var (
	fw *framework.Framework
	// keep says to leave the suite's directory behind: a spec failed, the
	// set-up did not finish, or STEPFLOW_E2E_KEEP is set.
	keep = os.Getenv("STEPFLOW_E2E_KEEP") != ""
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(failWithControllerLog)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)
	SetDefaultConsistentlyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Stepflow end to end")
}

// failWithControllerLog fails the spec with Gomega's message followed by
// the end of the controller's log: most failures here are a run that did
// not get somewhere, and the controller says why.
func failWithControllerLog(message string, callerSkip ...int) {
	skip := 1
	if len(callerSkip) > 0 {
		skip += callerSkip[0]
	}
	if fw != nil {
		if _, err := os.Stat(fw.ControllerLogPath()); err == nil {
			state := "running"
			if !fw.ControllerRunning() {
				state = "NOT RUNNING"
			}
			message += fmt.Sprintf("\n\n── the controller (%s): its log, last %d lines (all of it: %s, kept after a failure) ──\n%s",
				state, controllerLogLines, fw.ControllerLogPath(), fw.ControllerLogTail(controllerLogLines))
		}
	}
	Fail(message, skip)
}

var _ = BeforeSuite(func(ctx SpecContext) {
	keep = true // until the set-up is done
	root, err := framework.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	dir, err := os.MkdirTemp("", "stepflow-e2e-")
	Expect(err).NotTo(HaveOccurred())
	fw = framework.New(root, dir)
	GinkgoWriter.Printf("suite directory: %s\n", dir)

	By("building the stepflow binary")
	Expect(fw.Build(ctx)).To(Succeed())

	By("starting etcd and kube-apiserver, with the CRDs")
	Expect(fw.StartControlPlane()).To(Succeed())

	By("installing the shipped step and component definitions into " + systemNamespace + " with stepflow def apply")
	Expect(fw.InstallDefinitions(ctx, systemNamespace)).To(Succeed())

	By("starting the controller as a process of its own")
	Expect(fw.StartController()).To(Succeed())
	Eventually(fw.ControllerReady).Should(Succeed())
	keep = os.Getenv("STEPFLOW_E2E_KEEP") != ""
}, NodeTimeout(10*time.Minute)) // a cold build cache makes the build take minutes

var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() {
		keep = true
	}
})

var _ = AfterSuite(func() {
	if fw == nil {
		return
	}
	By("stopping the controller")
	Expect(fw.StopController(10 * time.Second)).To(Succeed())
	By("stopping the control plane")
	Expect(fw.StopControlPlane()).To(Succeed())
	if keep {
		fmt.Fprintf(GinkgoWriter, "kept the suite directory %s (controller log: %s)\n", fw.Dir, fw.ControllerLogPath())
		return
	}
	Expect(os.RemoveAll(fw.Dir)).To(Succeed())
})

// namespace creates the namespace of one spec. The control plane has no
// namespace controller, so names are not reused.
func namespace(ctx context.Context, name string) string {
	GinkgoHelper()
	Expect(fw.CreateNamespace(ctx, name)).To(Succeed())
	return name
}

// runFile writes manifest (runs, workflows, definitions) to a file and
// applies it with `stepflow run -f` in namespace ns.
func runFile(ns, file, manifest string) {
	GinkgoHelper()
	Expect(fw.ApplyFile(ns, file, manifest, "run")).To(Succeed())
}

// applyDefinition writes a step definition (CUE, `vela def` layout) to a
// file and installs it with `stepflow def apply -f` in namespace ns.
func applyDefinition(ns, file, cue string) {
	GinkgoHelper()
	Expect(fw.ApplyFile(ns, file, cue, "def", "apply")).To(Succeed())
}
