package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/web"
)

// syncBuffer is a bytes.Buffer a process writes while a spec reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = Describe("make run EXAMPLE=gray-release", func() {
	It("plays the README's gray release on a control plane of its own: one canary promoted, the next rolled back", func(ctx SpecContext) {
		assets, err := testenv.Assets()
		Expect(err).NotTo(HaveOccurred())
		var out syncBuffer
		cmd := exec.Command(fw.Binary, "local", "--example", "gray-release", "--assets", assets,
			"--state-dir", filepath.Join(fw.Dir, "local-state"))
		cmd.Dir = fw.Root // examples/, definitions/ and the chart's CRDs, as make run finds them
		cmd.Stdout, cmd.Stderr = &out, &out
		Expect(cmd.Start()).To(Succeed())
		var waitErr error
		exited := make(chan struct{})
		go func() { waitErr = cmd.Wait(); close(exited) }()
		DeferCleanup(func() {
			select {
			case <-exited:
				return
			default:
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		})

		Eventually(out.String).WithTimeout(3 * time.Minute).WithPolling(250 * time.Millisecond).Should(
			Or(ContainSubstring("the gray release is done"), ContainSubstring("error:")))
		got := out.String()
		Expect(got).NotTo(ContainSubstring("error:"))
		for _, want := range []string{
			"stepflow -n default launch -f examples/gray-release.yaml --category DEPLOY --name gray-v1",
			"StatefulSet clustermanage: image nginx:1.26, partition 1",
			"▶ run gray-v1 succeeded",
			"StatefulSet clustermanage: image nginx:1.26, partition 0",
			"StatefulSet clustermanage: image nginx:1.27, partition 1",
			"stepflow -n default context set gray-v2 continueRollout=false rollback=true",
			"▶ run gray-v2 terminated: rolled back by run gray-v2-rollback-",
			": succeeded", // the ROLLBACK run
		} {
			Expect(got).To(ContainSubstring(want))
		}
		Expect(strings.Count(got, "▶ ROLLBACK run ")).To(Equal(1))

		By("listing the gray release's runs with the curl example it printed, from the REST API it serves")
		list := regexp.MustCompile(`curl -s '(http://127\.0\.0\.1:[0-9]+/workflow\?appId=testapp)'`).FindStringSubmatch(got)
		Expect(list).NotTo(BeNil(), "no curl example of GET /workflow printed")
		launch := regexp.MustCompile(`curl -s --data-binary @examples/gray-release\.yaml -H 'Content-Type: application/yaml' '(http://127\.0\.0\.1:[0-9]+/workflow/launch\?appId=testapp&category=DEPLOY)'`).FindStringSubmatch(got)
		Expect(launch).NotTo(BeNil(), "no curl example of POST /workflow/launch printed")
		resp, err := http.Get(list[1])
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		var envelope struct {
			Code    int    `json:"code"`
			Success bool   `json:"success"`
			Message string `json:"message"`
			Data    struct {
				Total int `json:"total"`
				Items []struct {
					AppID          string `json:"appId"`
					WorkflowStatus string `json:"workflowStatus"`
				} `json:"items"`
			} `json:"data"`
		}
		Expect(json.NewDecoder(resp.Body).Decode(&envelope)).To(Succeed())
		Expect(envelope.Code).To(Equal(200))
		Expect(envelope.Success).To(BeTrue())
		Expect(envelope.Message).To(Equal("SUCCESS"))
		Expect(envelope.Data.Total).To(BeNumerically(">=", 2), "gray-v1 and gray-v2 at least")
		statuses := []string{}
		for _, in := range envelope.Data.Items {
			Expect(in.AppID).To(Equal("testapp"))
			statuses = append(statuses, in.WorkflowStatus)
		}
		Expect(statuses).To(ContainElement("SUCCESS")) // gray-v1

		By("opening the web UI at the address it printed")
		ui := regexp.MustCompile(`▶ web UI: (?:open |this binary was built without it \()(http://127\.0\.0\.1:[0-9]+/)`).FindStringSubmatch(got)
		Expect(ui).NotTo(BeNil(), "no web UI address printed")
		Expect(strings.Contains(got, "▶ web UI: open ")).To(Equal(web.Built()), "the UI line says whether the binary embeds the built app")
		page, err := http.Get(ui[1])
		Expect(err).NotTo(HaveOccurred())
		html, err := io.ReadAll(page.Body)
		page.Body.Close()
		Expect(err).NotTo(HaveOccurred())
		Expect(page.StatusCode).To(Equal(http.StatusOK))
		Expect(string(html)).To(ContainSubstring("<title>Stepflow</title>"))

		By("launching the gray release with the printed curl: it gets past its rollouts to the suspend, as the README says")
		doc, err := os.ReadFile(filepath.Join(fw.Root, "examples", "gray-release.yaml"))
		Expect(err).NotTo(HaveOccurred())
		launched, err := http.Post(launch[1], "application/yaml", bytes.NewReader(doc))
		Expect(err).NotTo(HaveOccurred())
		var instance struct {
			Code int `json:"code"`
			Data struct {
				ID int64 `json:"id"`
			} `json:"data"`
		}
		Expect(json.NewDecoder(launched.Body).Decode(&instance)).To(Succeed())
		launched.Body.Close()
		Expect(instance.Code).To(Equal(200))
		Expect(instance.Data.ID).To(BeNumerically(">", 0))
		base := strings.TrimSuffix(list[1], "/workflow?appId=testapp")
		Eventually(func(g Gomega) string {
			resp, err := http.Get(fmt.Sprintf("%s/workflow/%d", base, instance.Data.ID))
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			var got struct {
				Data struct {
					WorkflowStatus string `json:"workflowStatus"`
				} `json:"data"`
			}
			g.Expect(json.NewDecoder(resp.Body).Decode(&got)).To(Succeed())
			return got.Data.WorkflowStatus
		}).WithTimeout(time.Minute).WithPolling(250 * time.Millisecond).Should(Equal("SUSPEND"))

		By("reading the controller's metrics where it said they are: the gray release's runs are counted")
		metrics := regexp.MustCompile(`its Prometheus metrics \(stepflow_\*\) are on (http://127\.0\.0\.1:[0-9]+/metrics)`).FindStringSubmatch(got)
		Expect(metrics).NotTo(BeNil(), "no metrics address printed")
		scraped, err := http.Get(metrics[1])
		Expect(err).NotTo(HaveOccurred())
		body, err := io.ReadAll(scraped.Body)
		scraped.Body.Close()
		Expect(err).NotTo(HaveOccurred())
		Expect(scraped.StatusCode).To(Equal(http.StatusOK))
		Expect(string(body)).To(MatchRegexp(`(?m)^stepflow_run_duration_seconds_count\{[^}]*phase="succeeded"[^}]*\} [1-9]`))
		Expect(string(body)).To(MatchRegexp(`(?m)^stepflow_runs\{[^}]*phase="suspending"[^}]*\} [1-9]`))

		By("stopping it with Ctrl-C")
		Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
		Eventually(exited).WithTimeout(30 * time.Second).Should(BeClosed())
		Expect(waitErr).NotTo(HaveOccurred())
		Expect(out.String()).To(ContainSubstring("stopping the control plane"))
	})
})
