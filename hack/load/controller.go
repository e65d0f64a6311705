package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// controllerUnderTest is the controller, as a process of its own or inside
// the harness.
type controllerUnderTest interface {
	describe() string
	// metricsURL is its Prometheus endpoint on 127.0.0.1.
	metricsURL() string
	// usage is what /proc says of the process the controller runs in.
	usage() (procUsage, error)
	// separate is false when usage includes the harness.
	separate() bool
	// beginLoad and endLoad bracket the measured runs.
	beginLoad() error
	endLoad() error
	stop()
}

// controllerProcess is `stepflow controller` in a process of its own.
type controllerProcess struct {
	cmd     *exec.Cmd
	args    []string
	metrics string
	logPath string
	exited  chan struct{}
	// pss samples the controller's and its workers' PSS during the load.
	pss *pssSampler
	// built is the binary the harness built, removed at stop; "" for -stepflow.
	built string
}

var _ controllerUnderTest = (*controllerProcess)(nil)

func startProcess(ctx context.Context, o options, cl *cluster) (*controllerProcess, error) {
	bin := o.binary
	if bin == "" {
		bin = filepath.Join(o.workDir, "stepflow")
		logf("building %s", bin)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/stepflow")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/stepflow: %w", err)
		}
	}
	addr, err := freeLocalAddr()
	if err != nil {
		return nil, err
	}
	p := &controllerProcess{
		metrics: "http://" + addr + "/metrics",
		logPath: filepath.Join(o.workDir, "controller.log"),
		exited:  make(chan struct{}),
		args: []string{"controller",
			"--kubeconfig", cl.controllerKubeconfig,
			"--metrics-bind-address", addr,
			"--health-probe-bind-address", "0",
			"--http-allow-cidr", strings.Join(loopback, ","),
			"--max-concurrent-reconciles", strconv.Itoa(o.concurrency),
			"--kube-api-qps", strconv.FormatFloat(o.qps, 'g', -1, 64),
			"--kube-api-burst", strconv.Itoa(o.burst),
		},
	}
	p.args = append(p.args, strings.Fields(o.controllerArgs)...)
	if o.binary == "" {
		p.built = bin
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// The controller must not outlive the harness.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *controllerProcess) describe() string {
	return fmt.Sprintf("pid %d: stepflow %s; log %s", p.cmd.Process.Pid, strings.Join(p.args, " "), p.logPath)
}

func (p *controllerProcess) metricsURL() string { return p.metrics }

func (p *controllerProcess) usage() (procUsage, error) {
	select {
	case <-p.exited:
		return procUsage{}, fmt.Errorf("the controller exited; see %s", p.logPath)
	default:
	}
	u, err := readProc(p.cmd.Process.Pid)
	if err != nil {
		return u, err
	}
	// The controller evaluates in eval-worker processes of its own; their
	// CPU and memory are the controller's cost too.
	u.addWorkers(p.workers())
	if p.pss != nil {
		u.peakPSS = p.pss.peak()
	}
	return u, nil
}

func (p *controllerProcess) workers() []int {
	var pids []int
	for pid := range children(p.cmd.Process.Pid) {
		pids = append(pids, pid)
	}
	return pids
}

// pssSampler keeps the peak of the summed PSS of a process and its
// children. The controller and its eval workers run one binary, whose
// code pages the kernel shares among them; VmHWM counts them in each
// process, PSS (proportional set size) splits them, so its sum is the
// memory they take together.
type pssSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  int64
}

func startPSS(pids func() []int, every time.Duration) *pssSampler {
	s := &pssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var sum int64
			for _, pid := range pids() {
				sum += readPSS(pid)
			}
			s.mu.Lock()
			s.max = max(s.max, sum)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *pssSampler) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

func (s *pssSampler) halt() {
	close(s.stop)
	<-s.done
}

// readPSS is the Pss line of /proc/<pid>/smaps_rollup, in bytes; 0 when
// the process is gone.
func readPSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// addWorkers adds the usage of the eval-worker processes pids to u.
func (u *procUsage) addWorkers(pids []int) {
	for _, pid := range pids {
		w, err := readProc(pid)
		if err != nil {
			continue // a worker that just exited
		}
		u.workers++
		u.workerCPU += w.cpu
		u.workerPeakRSS += w.peakRSS
		u.workerRSS += w.rss
	}
}

func (p *controllerProcess) separate() bool { return true }
func (p *controllerProcess) beginLoad() error {
	p.pss = startPSS(func() []int { return append(p.workers(), p.cmd.Process.Pid) }, 250*time.Millisecond)
	return nil
}

func (p *controllerProcess) endLoad() error {
	p.pss.halt()
	return nil
}

// stop asks the controller to stop, kills it if it has not within 10s, and
// removes the binary the harness built (the logs stay).
func (p *controllerProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if p.built != "" {
		_ = os.Remove(p.built)
	}
}

// freeLocalAddr is a free 127.0.0.1 port for the metrics endpoint.
func freeLocalAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitForMetrics waits until the controller's metrics endpoint answers:
// the manager has started.
func waitForMetrics(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := scrape(ctx, url); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the controller's metrics endpoint %s did not answer within %s: %w", url, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// settle waits, at most limit, until the controller's request count has
// not changed for a second: Events are sent asynchronously, after the
// status write that finished a run.
func settle(ctx context.Context, url string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, same := -1.0, 0
	for time.Now().Before(deadline) && same < 2 {
		m, err := scrape(ctx, url)
		if err != nil {
			return
		}
		if n := m.sum(clientRequestsMetric, nil); n == last {
			same++
		} else {
			last, same = n, 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// procUsage is a process's CPU time and memory, from /proc.
type procUsage struct {
	cpu time.Duration
	// peakRSS is VmHWM, rss VmRSS, in bytes.
	peakRSS, rss int64
	// workers are the process's eval-worker children: how many, and the
	// sums of their CPU time, VmHWM and VmRSS.
	workers                  int
	workerCPU                time.Duration
	workerPeakRSS, workerRSS int64
	// reapedCPU is the CPU time of the children it has waited for.
	reapedCPU time.Duration
	// peakPSS is the peak of the summed PSS of the process and its
	// workers during the load (0: not sampled).
	peakPSS int64
}

// readProc reads utime+stime from /proc/<pid>/stat and VmHWM and VmRSS
// from /proc/<pid>/status.
func readProc(pid int) (procUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procUsage{}, err
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procUsage{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return procUsage{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procUsage{}, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, fields[11], fields[12])
	}
	u := procUsage{cpu: time.Duration(utime+stime) * time.Second / time.Duration(clockTicks)}
	// cutime and cstime (fields 16 and 17): children it has waited for,
	// such as eval workers that were replaced or retired.
	if len(fields) >= 15 {
		cu, err1 := strconv.ParseInt(fields[13], 10, 64)
		cs, err2 := strconv.ParseInt(fields[14], 10, 64)
		if err1 == nil && err2 == nil {
			u.reapedCPU = time.Duration(cu+cs) * time.Second / time.Duration(clockTicks)
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmHWM":
			u.peakRSS = kb << 10
		case "VmRSS":
			u.rss = kb << 10
		}
	}
	return u, nil
}

// clockTicks is USER_HZ, the unit of utime and stime.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}()

// childrenNamed finds this process's children by command name: the
// kube-apiserver and etcd envtest started.
func childrenNamed(names ...string) map[string]int {
	out := map[string]int{}
	for pid, comm := range children(os.Getpid()) {
		for _, n := range names {
			if comm == n {
				out[n] = pid
			}
		}
	}
	return out
}

// children finds parent's children in /proc: their command names by pid.
func children(parent int) map[int]string {
	out := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := strconv.Itoa(parent)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 2 || fields[1] != self {
			continue
		}
		out[pid] = string(stat[open+1 : end])
	}
	return out
}

// scrape fetches a Prometheus text endpoint on 127.0.0.1.
func scrape(ctx context.Context, url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}
