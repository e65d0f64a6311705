// Command load puts Stepflow's controller under load and reports what it
// cost. It starts a local control plane (etcd and kube-apiserver through
// envtest), installs the CRDs, the shipped step definitions and two of its
// own (load-wait*.cue), serves the HTTP step on 127.0.0.1, and runs the
// controller as a separate process, so that /proc gives its CPU time and
// peak RSS. With -inprocess the controller runs inside this process instead,
// under a CPU profile.
//
// It then creates -n WorkflowRuns in namespace "load", each of these steps,
// StepByStep:
//
//	apply    apply-object   applies ConfigMap <run>-src with data.ready "true"
//	read     read-object    reads it back; output data = its data
//	wait     load-wait      #ConditionalWait on data.ready: ready at once
//	                        (-wait-reads: load-wait-read reads the ConfigMap
//	                        itself and waits on its data.ready)
//	approve  suspend        only with -suspend; the harness resumes the run
//	request  request        GET http://127.0.0.1:<port>/answer
//	export   export2config  writes ConfigMap <run>-out with the answer
//
// and watches them (one watch, no polling) until all have finished (or were
// suspended again after their resume) or -timeout passes. Every watch event is stamped with the time it arrived,
// which gives millisecond times where the run's status only has seconds.
//
// What it measures:
//
//	runs/min         finished runs / (first create → last finish seen)
//	end to end       create request sent → finished status seen
//	step latency     status times: step i's lastExecuteTime minus step
//	                 i-1's (the run's startTime for the first); whole seconds
//	                 watch times: step i seen done minus step i-1 seen done,
//	                 for every step but the first (its wait includes the
//	                 queue: reported apart) and the one after approve
//	resume → next    resume status write returned → the next step seen done;
//	                 and runs seen suspended again after their resume
//	re-execution     runs whose HTTP step reached the server twice; run
//	                 finishes the controller counted beyond one per run
//	controller       utime+stime and VmHWM from /proc/<pid>, over the load
//	API requests     the controller's rest_client_requests_total after the
//	                 runs minus before, by method and code; and the API
//	                 server's audit log, by user, verb and resource
//
// A warm-up run goes first, so that caches, informers and compiled
// templates exist before anything is measured. The exit status is 1 when a
// run failed or did not finish, 2 when the harness itself could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// options are the flags.
type options struct {
	runs        int
	parallel    int
	rate        float64
	suspend     bool
	waitReads   bool
	timeout     time.Duration
	concurrency int
	qps         float64
	burst       int
	binary      string
	inProcess   bool
	cpuProfile  string
	memProfile  string
	assets      string
	crds        string
	definitions string
	workDir     string
	audit       bool
	// controllerArgs are more flags for `stepflow controller`.
	controllerArgs string
	inProcessEval  bool
}

// workerEnv makes this binary an evaluator worker process of the
// -inprocess controller's pool, as `stepflow eval-worker` is for the binary.
const workerEnv = "STEPFLOW_LOAD_EVAL_WORKER"

func main() {
	if os.Getenv(workerEnv) == "1" {
		if err := sandbox.Serve(os.Stdin, os.Stdout, sandbox.WorkerOptions{Ops: opset.Catalog()}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	o := options{}
	flag.IntVar(&o.runs, "n", 1000, "runs to create")
	flag.IntVar(&o.parallel, "parallel", 16, "goroutines creating (and, with -suspend, resuming) runs")
	flag.Float64Var(&o.rate, "rate", 0, "runs created per second; 0 creates them as fast as -parallel allows")
	flag.BoolVar(&o.suspend, "suspend", false, "add a suspend step that the harness resumes; measures resume → next step")
	flag.BoolVar(&o.waitReads, "wait-reads", false, "the wait step reads the ConfigMap itself (load-wait-read.cue) instead of taking read's output")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up on runs not created and finished after this long")
	flag.IntVar(&o.concurrency, "concurrency", 8, "controller --max-concurrent-reconciles (the chart's default is 8)")
	flag.Float64Var(&o.qps, "qps", 50, "controller --kube-api-qps (the chart's default is 50)")
	flag.IntVar(&o.burst, "burst", 100, "controller --kube-api-burst (the chart's default is 100)")
	flag.StringVar(&o.binary, "stepflow", "", "the stepflow binary to run; default: go build ./cmd/stepflow into the work directory")
	flag.BoolVar(&o.inProcess, "inprocess", false, "run the controller in this process, under a CPU profile")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "load-cpu.pprof", "with -inprocess: where to write the CPU profile of the load")
	flag.StringVar(&o.controllerArgs, "controller-args", "", "more flags for the separate controller process, space-separated (e.g. --eval-workers=-1: evaluate in-process)")
	flag.BoolVar(&o.inProcessEval, "inprocess-eval", false, "with -inprocess: evaluate in the controller's own goroutines instead of worker processes")
	flag.StringVar(&o.memProfile, "memprofile", "load-heap.pprof", "with -inprocess: where to write a heap profile after the load")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory of kube-apiserver and etcd; default $KUBEBUILDER_ASSETS, else hack/control-plane.sh")
	flag.StringVar(&o.crds, "crds", "charts/stepflow/crds", "directory of the CRDs")
	flag.StringVar(&o.definitions, "definitions", "definitions", "directory of the shipped step definitions (.cue)")
	flag.StringVar(&o.workDir, "workdir", "", "where to keep kubeconfigs, logs, the audit log and the binary; default a new temporary directory")
	flag.BoolVar(&o.audit, "audit", true, "keep an API server audit log, for API requests by verb and resource")
	flag.Parse()
	if o.runs < 1 || o.parallel < 1 {
		fmt.Fprintln(os.Stderr, "load: -n and -parallel must be at least 1")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
	}
	os.Exit(code)
}

// errRunsFailed makes the exit status 1: the harness worked, runs did not.
var errRunsFailed = errors.New("runs failed or did not finish")

// run does the whole load test and returns the exit status.
func run(ctx context.Context, o options) (int, error) {
	for _, dir := range []string{o.crds, o.definitions} {
		if _, err := os.Stat(dir); err != nil {
			return 2, fmt.Errorf("%w (run from the repository root, as `make load` does)", err)
		}
	}
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "stepflow-load-")
		if err != nil {
			return 2, err
		}
		o.workDir = dir
	} else if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return 2, err
	}
	logf("work directory %s", o.workDir)

	cl, err := startCluster(ctx, o)
	if err != nil {
		return 2, err
	}
	defer cl.stop()
	// Deferred after cl.stop, so it runs first: the watch and the HTTP
	// server end before the control plane stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	answer, err := serveAnswer(ctx)
	if err != nil {
		return 2, err
	}

	var ctl controllerUnderTest
	if o.inProcess {
		ctl, err = startInProcess(ctx, o, cl)
	} else {
		ctl, err = startProcess(ctx, o, cl)
	}
	if err != nil {
		return 2, err
	}
	defer ctl.stop()
	if err := waitForMetrics(ctx, ctl.metricsURL(), time.Minute); err != nil {
		return 2, err
	}
	logf("controller running (%s)", ctl.describe())

	w := workload{namespace: loadNamespace, endpoint: answer.url, suspend: o.suspend, waitReads: o.waitReads}
	tr, err := startTracker(ctx, cl.harness, w, o.parallel)
	if err != nil {
		return 2, err
	}

	if err := warmUp(ctx, cl.harness, w, tr); err != nil {
		return 2, err
	}

	before, err := takeSnapshot(ctx, ctl, cl, answer)
	if err != nil {
		return 2, err
	}
	if err := ctl.beginLoad(); err != nil {
		return 2, err
	}
	logf("creating %d runs with %d creators", o.runs, o.parallel)
	// -timeout bounds creating the runs and waiting for them.
	loadCtx, cancelLoad := context.WithTimeout(ctx, o.timeout)
	traces := tr.track(runNames(o.runs))
	createErrs := createRuns(loadCtx, cl.harness, w, tr, traces, o.parallel, o.rate)
	finished := tr.wait(loadCtx, traces)
	cancelLoad()
	settle(ctx, ctl.metricsURL(), 15*time.Second)
	if err := ctl.endLoad(); err != nil {
		logf("ending the load: %v", err)
	}
	after, err := takeSnapshot(ctx, ctl, cl, answer)
	if err != nil {
		return 2, err
	}
	logf("%d of %d runs finished", finished, len(traces))

	rep := buildReport(o, w, tr.snapshot(traces), createErrs, before, after, cl, ctl.separate())
	rep.countRequests(answer.perRun())
	rep.print(os.Stdout)
	if !rep.ok() {
		return 1, errRunsFailed
	}
	return 0, nil
}

// logf reports progress on stderr, so the report alone is on stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s load: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
