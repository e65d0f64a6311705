package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/e2e/framework"
	"github.com/stepflow-dev/stepflow/web"
)

// systemNamespace receives the shipped definitions, as in e2e/.
const systemNamespace = "vela-system"

// logLines is how much of the controller's and the server's logs a
// failure shows.
const logLines = 30

var (
	fw *framework.Framework
	// srv is `stepflow server --auth kubernetes`, serving the UI.
	srv *framework.APIServer
	// browser is the suite's one Chromium; each spec opens a tab in a
	// browser context of its own (openTab).
	browser     context.Context
	stopBrowser context.CancelFunc
	// current is the running spec's tab, for the failure's screenshot.
	current *Tab
	// keep says to leave the suite's directory behind.
	keep = os.Getenv("STEPFLOW_E2E_KEEP") != ""
)

func TestBrowser(t *testing.T) {
	RegisterFailHandler(failWithArtifacts)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Stepflow web UI in Chromium")
}

// failWithArtifacts fails the spec with Gomega's message, the paths of a
// screenshot and the HTML of the spec's tab as it is now, and the ends of
// the controller's and the server's logs.
func failWithArtifacts(message string, callerSkip ...int) {
	skip := 1
	if len(callerSkip) > 0 {
		skip += callerSkip[0]
	}
	if current != nil {
		message += "\n\n" + current.saveArtifacts(CurrentSpecReport().FullText())
	}
	if fw != nil && fw.Kubeconfig != "" {
		message += fmt.Sprintf("\n\n── the controller's log, last %d lines (%s) ──\n%s", logLines, fw.ControllerLogPath(), fw.ControllerLogTail(logLines))
	}
	if srv != nil {
		message += fmt.Sprintf("\n\n── stepflow server's log, last %d lines (%s) ──\n%s", logLines, srv.LogPath, srv.LogTail(logLines))
	}
	Fail(message, skip)
}

var _ = BeforeSuite(func(ctx SpecContext) {
	if !web.Built() {
		Fail("the stepflow binary would serve the placeholder page, not the UI (web/dist/index.html is missing): run make ui first")
	}
	keep = true // until the set-up is done
	root, err := framework.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	dir, err := os.MkdirTemp("", "stepflow-browser-")
	Expect(err).NotTo(HaveOccurred())
	fw = framework.New(root, dir)
	GinkgoWriter.Printf("suite directory: %s\n", dir)

	By("finding Chromium")
	chromium, err := chromiumPath(root)
	Expect(err).NotTo(HaveOccurred())

	By("building the stepflow binary, with the UI embedded")
	Expect(fw.Build(ctx)).To(Succeed())

	By("starting etcd and kube-apiserver, with the CRDs")
	Expect(fw.StartControlPlane()).To(Succeed())

	By("installing the shipped definitions into " + systemNamespace)
	Expect(fw.InstallDefinitions(ctx, systemNamespace)).To(Succeed())

	By("starting the controller and stepflow server, each a process of its own")
	Expect(fw.StartController()).To(Succeed())
	Eventually(fw.ControllerReady).Should(Succeed())
	srv, err = fw.StartAPIServer("default", "--system-namespace", systemNamespace)
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("stepflow server: %s\n", srv.URL)

	By("starting " + chromium)
	browser, stopBrowser = startBrowser(chromium, filepath.Join(dir, "chromium"))
	Expect(chromedp.Do(browser)).To(Succeed(), "starting %s", chromium)
	keep = os.Getenv("STEPFLOW_E2E_KEEP") != ""
}, NodeTimeout(10*time.Minute)) // a cold build cache makes the build take minutes

var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() {
		keep = true
	}
})

var _ = AfterSuite(func() {
	if stopBrowser != nil {
		stopBrowser()
	}
	if fw == nil {
		return
	}
	Expect(srv.Stop(10 * time.Second)).To(Succeed())
	Expect(fw.StopController(10 * time.Second)).To(Succeed())
	Expect(fw.StopControlPlane()).To(Succeed())
	if keep {
		fmt.Fprintf(GinkgoWriter, "kept the suite directory %s\n", fw.Dir)
		return
	}
	Expect(os.RemoveAll(fw.Dir)).To(Succeed())
})

// chromiumPath is $STEPFLOW_CHROMIUM, else what hack/chromium.sh prints
// (it installs Debian's chromium when it is missing).
func chromiumPath(root string) (string, error) {
	if p := os.Getenv("STEPFLOW_CHROMIUM"); p != "" {
		return p, nil
	}
	script := filepath.Join(root, "hack", "chromium.sh")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("no browser: STEPFLOW_CHROMIUM is unset and %s failed: %v\n%s", script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// startBrowser starts headless Chromium with a fresh profile in dataDir.
// Without the networking flags, Chromium on a closed network refuses
// connections, even to loopback.
func startBrowser(path, dataDir string) (context.Context, context.CancelFunc) {
	alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dataDir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(1600, 1000),
	)
	ctx, stop := chromedp.NewContext(alloc, chromedp.WithLogf(GinkgoWriter.Printf))
	return ctx, func() {
		stop()
		stopAlloc()
	}
}
