package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stepflow-dev/stepflow/internal/testenv"
)

// procChild is a process as /proc shows it.
type procChild struct {
	pid  int
	comm string
}

// procStat reads pid's parent, command name and state from /proc.
func procStat(pid int) (ppid int, comm, state string, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", "", false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return 0, "", "", false
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 2 {
		return 0, "", "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, s[open+1 : closing], f[0], err == nil
}

// childrenOf lists parent's children named etcd or kube-apiserver.
func childrenOf(parent int) []procChild {
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var out []procChild
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, comm, _, ok := procStat(pid); ok && ppid == parent && (comm == "etcd" || comm == "kube-apiserver") {
			out = append(out, procChild{pid: pid, comm: comm})
		}
	}
	return out
}

// alive says whether c still runs: its pid exists, is no zombie and is
// still the same command.
func alive(c procChild) bool {
	_, comm, state, ok := procStat(c.pid)
	return ok && state != "Z" && comm == c.comm
}

var _ = Describe("make run, stopped", func() {
	BeforeEach(func() {
		if runtime.GOOS != "linux" {
			Skip("reads /proc")
		}
	})

	DescribeTable("leaves no etcd or kube-apiserver behind",
		func(sig syscall.Signal) {
			assets, err := testenv.Assets()
			Expect(err).NotTo(HaveOccurred())
			// stdout and stderr into a pipe, as make run 2>&1 | tee log.
			r, w, err := os.Pipe()
			Expect(err).NotTo(HaveOccurred())
			cmd := exec.Command(fw.Binary, "local", "--no-example", "--assets", assets,
				"--state-dir", filepath.Join(fw.Dir, "local-stop-"+sig.String()), "--api-listen", "127.0.0.1:0")
			cmd.Dir = fw.Root
			cmd.Stdout, cmd.Stderr = w, w
			Expect(cmd.Start()).To(Succeed())
			w.Close()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var children []procChild
			DeferCleanup(func() {
				_ = cmd.Process.Kill()
				for _, c := range children {
					if alive(c) {
						_ = syscall.Kill(c.pid, syscall.SIGKILL)
					}
				}
			})

			ready := make(chan struct{})
			go func() {
				defer GinkgoRecover()
				sc := bufio.NewScanner(r)
				for sc.Scan() {
					GinkgoWriter.Println(sc.Text())
					if strings.Contains(sc.Text(), "press Ctrl-C to stop") {
						close(ready)
						return
					}
				}
			}()
			Eventually(ready).WithTimeout(2*time.Minute).Should(BeClosed(), "stepflow local never said it was running")
			children = childrenOf(cmd.Process.Pid)
			Expect(children).To(HaveLen(2), "etcd and kube-apiserver, children of stepflow local")

			By("closing the reading end of its output, as tee does on Ctrl-C, and sending " + sig.String())
			Expect(r.Close()).To(Succeed())
			Expect(cmd.Process.Signal(sig)).To(Succeed())
			Eventually(exited).WithTimeout(30 * time.Second).Should(Receive())
			for _, c := range children {
				Eventually(func() bool { return alive(c) }).WithTimeout(10*time.Second).Should(BeFalse(),
					"%s (pid %d) outlived stepflow local", c.comm, c.pid)
			}
		},
		Entry("Ctrl-C (SIGINT)", syscall.SIGINT),
		Entry("a closed terminal (SIGHUP)", syscall.SIGHUP),
		Entry("kill -9: the parent-death signal", syscall.SIGKILL),
	)
})
