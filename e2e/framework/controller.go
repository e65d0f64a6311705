package framework

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/onsi/gomega"
)

// controllerLog is the file, under Dir, that every controller process of
// the framework appends its output to.
const controllerLog = "controller.log"

// readyLine is what controller-runtime logs once a controller's cache has
// synced and its workers run; Stepflow has two controllers (runs and
// definitions).
const (
	readyLine  = "Starting workers"
	readyCount = 2
)

// process is one controller process.
type process struct {
	cmd *exec.Cmd
	// logFrom is where its output starts in the log file.
	logFrom int64
	done    chan struct{}
	err     error // how it exited, once done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ControllerLogPath is the file the controller processes write to.
func (f *Framework) ControllerLogPath() string {
	return filepath.Join(f.Dir, controllerLog)
}

// StartController starts `stepflow controller` as a separate process, its
// output appended to ControllerLogPath. It does not wait for it to be
// ready: see ControllerReady.
func (f *Framework) StartController() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.controller != nil && !f.controller.exited() {
		return fmt.Errorf("a controller runs already (pid %d)", f.controller.cmd.Process.Pid)
	}
	log, err := os.OpenFile(f.ControllerLogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	f.started++
	args := []string{"controller", "--kubeconfig", f.Kubeconfig,
		"--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "0", "--log-development",
		// The suites' endpoints (Endpoint) listen on loopback, which a
		// controller that finds itself in a pod would deny.
		"--http-allow-cidr", "127.0.0.0/8,::1"}
	fmt.Fprintf(log, "===== controller #%d: stepflow %s (%s)\n", f.started, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	from, err := log.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.Binary, args...)
	cmd.Dir = f.Dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the controller: %w", err)
	}
	p := &process{cmd: cmd, logFrom: from, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	f.controller = p
	return nil
}

// ControllerReady is nil once the running controller has started its
// workers, for Eventually. A controller that has exited stops Eventually
// at once, with its log.
func (f *Framework) ControllerReady() error {
	f.mu.Lock()
	p := f.controller
	f.mu.Unlock()
	if p == nil {
		return gomega.StopTrying("no controller was started")
	}
	if p.exited() {
		return gomega.StopTrying(fmt.Sprintf("the controller exited (%v); its log:\n%s", p.err, f.ControllerLogTail(40)))
	}
	out, err := os.ReadFile(f.ControllerLogPath())
	if err != nil {
		return err
	}
	if int64(len(out)) < p.logFrom {
		return errors.New("the controller log was truncated")
	}
	if n := bytes.Count(out[p.logFrom:], []byte(readyLine)); n < readyCount {
		return fmt.Errorf("the controller has logged %q %d times, want %d", readyLine, n, readyCount)
	}
	return nil
}

// ControllerRunning says whether a controller process runs.
func (f *Framework) ControllerRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.controller != nil && !f.controller.exited()
}

// KillController kills the running controller with SIGKILL, as a node
// failure or an OOM kill would, and waits until it is gone.
func (f *Framework) KillController() error {
	return f.signalController(syscall.SIGKILL, 0)
}

// StopController asks the running controller to stop (SIGTERM) and kills
// it if it has not stopped after grace. No controller running is fine.
func (f *Framework) StopController(grace time.Duration) error {
	return f.signalController(syscall.SIGTERM, grace)
}

func (f *Framework) signalController(sig syscall.Signal, grace time.Duration) error {
	f.mu.Lock()
	p := f.controller
	f.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if sig == syscall.SIGKILL {
		<-p.done
		return nil
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	return fmt.Errorf("the controller did not stop within %s of %s and was killed", grace, sig)
}

// ControllerLogTail returns the last n lines the controllers wrote.
func (f *Framework) ControllerLogTail(n int) string {
	out, err := os.ReadFile(f.ControllerLogPath())
	if err != nil {
		return fmt.Sprintf("(no controller log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(… %d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
