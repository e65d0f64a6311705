// Command apiload measures the REST API of `stepflow server` with many
// runs stored: how long GET /workflow?appId=X takes, and how many
// launches a second POST /workflow/launch sustains. Run it from the
// repository root:
//
//	go run ./hack/apiload                 # 10,000 runs; 500 launches from 1 client, 500 from 8
//	go run ./hack/apiload -n 2000 -launches 100 -requests 200
//
// It starts a local control plane (etcd and kube-apiserver through
// envtest, binaries from $KUBEBUILDER_ASSETS or hack/control-plane.sh,
// the chart's CRDs), installs the shipped step definitions into the
// system namespace, and then:
//
//  1. stores -n WorkflowRuns in namespace "load", as a launch makes them:
//     each is app.Build of the gray release (examples/gray-release.yaml)
//     with its app id, category DEPLOY, creator, the configuration
//     annotation, its sha256 and a numeric instance id label, created
//     directly with a client by -parallel goroutines. The ids are
//     1..n and the instance id counter is then set to n, so later
//     launches continue above them (one counter write instead of n). No
//     controller runs: the runs stay PENDING, which is all a list reads.
//     App ids: 1% of the runs are "app-small", 50% "app-half", and the
//     rest spread over "app-0".."app-48", about 1% each.
//  2. starts the API handler in this process (apiserver.New over
//     apiserver.NewCluster, the server binary's cached client, with
//     apiserver.Anonymous as `--auth none` does, no rate limit and no
//     Event recorder: the binary also records a Launched Event per
//     launch, sent in the background),
//     served over real HTTP on 127.0.0.1, starts its informer of runs and
//     waits for it to sync. Its client may send -server-qps requests a
//     second to the API server (burst -server-burst): 50 and 100, the
//     defaults of `stepflow server` (--kube-api-qps, --kube-api-burst)
//     and of the controller; -server-qps 0 -server-burst 0 measures
//     client-go's own 5 and 10, which bind launches (a launch sends
//     several requests: the counter's read and update, the run's create,
//     the reads of its answer).
//  3. sends -requests GET /workflow?appId=X&pageSize=20 for X matching
//     ~1% and ~50% of the runs, one after another, and reports p50, p99
//     and max.
//  4. sends -launches POST /workflow/launch?appId=app-launch&category=DEPLOY
//     (the gray release) from 1, then 8 clients at once (-launch-parallel)
//     and reports launches per second and the launch latency. Parallel
//     launches contend for the instance id counter (optimistic
//     concurrency, retried with a backoff).
//
// Figures depend on the machine; run it when nothing else is busy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// options are the flags.
type options struct {
	runs           int
	parallel       int
	requests       int
	pageSize       int
	launches       int
	launchParallel clientCounts
	assets         string
	crds           string
	definitions    string
	configuration  string
	timeout        time.Duration
	serverQPS      float64
	serverBurst    int
}

func main() {
	o := options{}
	flag.IntVar(&o.runs, "n", 10000, "runs to store before measuring")
	flag.IntVar(&o.parallel, "parallel", 16, "goroutines creating the stored runs")
	flag.IntVar(&o.requests, "requests", 500, "GET /workflow?appId= requests per app id measured")
	flag.IntVar(&o.pageSize, "page-size", 20, "pageSize of the lists")
	flag.IntVar(&o.launches, "launches", 500, "launches through POST /workflow/launch")
	o.launchParallel = clientCounts{1, 8}
	flag.Var(&o.launchParallel, "launch-parallel", "clients launching at once, comma-separated: -launches launches for each")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory of kube-apiserver and etcd; default $KUBEBUILDER_ASSETS, else hack/control-plane.sh")
	flag.StringVar(&o.crds, "crds", "charts/stepflow/crds", "directory of the CRDs")
	flag.StringVar(&o.definitions, "definitions", "definitions", "directory of the shipped step definitions (.cue)")
	flag.StringVar(&o.configuration, "configuration", "examples/gray-release.yaml", "the ApplicationConfiguration stored and launched")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.Float64Var(&o.serverQPS, "server-qps", 50, "the server's client QPS to the API server (the controller chart's --kube-api-qps); 0: client-go's default of 5, what `stepflow server` gets today")
	flag.IntVar(&o.serverBurst, "server-burst", 100, "the server's client burst; 0: client-go's default of 10")
	flag.Parse()
	// controller-runtime's cache logs through its global logger; what
	// fails here is returned instead.
	ctrllog.SetLogger(logr.Discard())
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := run(ctx, o)
	if rep != nil {
		rep.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.runs < 100:
		return errors.New("-n: at least 100, so that 1% of the runs is one app id")
	case o.parallel < 1:
		return errors.New("-parallel: at least 1")
	case o.requests < 1:
		return errors.New("-requests: at least 1")
	case o.pageSize < 1:
		return errors.New("-page-size: at least 1")
	case o.launches < 0:
		return errors.New("-launches: not negative")
	}
	return nil
}

// clientCounts is a comma-separated list of positive numbers.
type clientCounts []int

func (c *clientCounts) String() string {
	var s []string
	for _, n := range *c {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}

func (c *clientCounts) Set(v string) error {
	*c = nil
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q: want positive numbers, comma-separated", v)
		}
		*c = append(*c, n)
	}
	return nil
}
