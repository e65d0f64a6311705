package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// loopback is what the controller's HTTP fence must allow explicitly: the
// request step's endpoint (answerServer) listens on 127.0.0.1, which a
// controller that thinks it runs in a cluster denies.
var loopback = []string{"127.0.0.0/8", "::1"}

// controllerInProcess runs the controller, built by controller.Setup as
// the binary builds it, inside the harness, so that one CPU profile covers
// it. Its CPU time and RSS
// include the harness's; so do its client metrics, since client-go counts
// every client of the process.
type controllerInProcess struct {
	o       options
	metrics string
	cancel  context.CancelFunc
	done    chan error
	profile *os.File
}

var _ controllerUnderTest = (*controllerInProcess)(nil)

func startInProcess(ctx context.Context, o options, cl *cluster) (*controllerInProcess, error) {
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	addr, err := freeLocalAddr()
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(cl.controllerConfig)
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	mgr, err := controller.NewManager(cfg, ctrl.Options{
		Scheme:                 cl.scheme,
		Metrics:                metricsserver.Options{BindAddress: addr},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	copts := controller.Options{MaxConcurrentReconciles: o.concurrency,
		HTTP: controller.HTTPOptions{Fence: netfence.Config{AllowCIDRs: loopback}}}
	if !o.inProcessEval {
		// As the binary does: workers are this binary (see main).
		copts.Sandbox = &sandbox.Options{Binary: os.Args[0], Env: []string{workerEnv + "=1"}}
	}
	if _, err := controller.Setup(mgr, copts); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &controllerInProcess{o: o, metrics: "http://" + addr + "/metrics", cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- mgr.Start(ctx) }()
	return c, nil
}

func (c *controllerInProcess) describe() string {
	return fmt.Sprintf("in process: --max-concurrent-reconciles %d --kube-api-qps %g --kube-api-burst %d",
		c.o.concurrency, c.o.qps, c.o.burst)
}

func (c *controllerInProcess) metricsURL() string { return c.metrics }

func (c *controllerInProcess) usage() (procUsage, error) {
	u, err := readProc(os.Getpid())
	if err != nil {
		return u, err
	}
	// The eval workers are children running this same binary; etcd and
	// kube-apiserver are children too, but not the controller's.
	self, _ := os.Executable()
	var workers []int
	for pid := range children(os.Getpid()) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == self {
			workers = append(workers, pid)
		}
	}
	u.addWorkers(workers)
	return u, nil
}

func (c *controllerInProcess) separate() bool { return false }

func (c *controllerInProcess) beginLoad() error {
	f, err := os.Create(c.o.cpuProfile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	c.profile = f
	return nil
}

// endLoad stops the CPU profile and writes a heap profile.
func (c *controllerInProcess) endLoad() error {
	if c.profile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	if err := c.profile.Close(); err != nil {
		return err
	}
	c.profile = nil
	logf("CPU profile in %s (go tool pprof -top %s)", c.o.cpuProfile, c.o.cpuProfile)
	f, err := os.Create(c.o.memProfile)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return err
	}
	logf("heap profile in %s", c.o.memProfile)
	return nil
}

func (c *controllerInProcess) stop() {
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			logf("the in-process controller stopped: %v", err)
		}
	case <-time.After(10 * time.Second):
		logf("the in-process controller did not stop within 10s")
	}
}
