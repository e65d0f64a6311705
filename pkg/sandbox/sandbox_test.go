package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// workerEnv makes the test binary a worker: TestMain serves instead of
// running the tests.
const workerEnv = "STEPFLOW_SANDBOX_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := sandbox.Serve(os.Stdin, os.Stdout, sandbox.WorkerOptions{Ops: testOps()}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testOps are the controller's ops, without a cluster.
func testOps() *op.Registry { return opset.Catalog() }

func newPool(t testing.TB, opts sandbox.Options) *sandbox.Pool {
	t.Helper()
	opts.Ops = testOps()
	opts.Binary = os.Args[0]
	opts.Env = append(opts.Env, workerEnv+"=1")
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	p, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

const post = `
import (
	"vela/op"
	"encoding/json"
)

req: op.#HTTPDo & {
	method: "POST"
	url:    parameter.url
	request: body: json.Marshal({n: parameter.n})
}
response: json.Unmarshal(req.response.body)
parameter: {
	url: string
	n:   int
}
`

// counter is an HTTP endpoint that counts its hits and answers {"got": n+1}.
func counter(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		var n int
		fmt.Sscanf(string(b), `{"n":%d}`, &n)
		fmt.Fprintf(w, `{"got": %d}`, n+1)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestEvaluateRoundTrip(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	srv, hits := counter(t)
	var ran []op.Class
	var mu sync.Mutex
	runner := op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
		mu.Lock()
		ran = append(ran, c.Class)
		mu.Unlock()
		if c.Step.StepID != "run-1-send" || c.Env.Log == nil {
			t.Errorf("op call lost its step or env: %+v %+v", c.Step, c.Env)
		}
		return op.Direct.Run(ctx, c)
	})
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": srv.URL, "n": 41},
		Step:       op.Step{StepName: "send", StepID: "run-1-send"},
		Env:        op.Env{Log: op.LogSinkFunc(func(op.Step, int, string) {})},
		Runner:     runner,
		Outputs:    []string{"response.got", "response.missing"},
		Data:       true,
	})
	if out.Phase != eval.Succeeded {
		t.Fatalf("outcome %s %s: %s", out.Phase, out.Reason, out.Message)
	}
	if hits.Load() != 1 {
		t.Errorf("the endpoint got %d hits, want 1", hits.Load())
	}
	if len(ran) != 1 || ran[0] != op.Effect {
		t.Errorf("op calls run in the parent: %v, want one effect", ran)
	}
	if len(out.Calls) != 1 || out.Calls[0].Path != "req" || out.Calls[0].Class != op.Effect {
		t.Errorf("calls %+v", out.Calls)
	}
	if len(out.Outputs) != 2 || out.Outputs[0].Err != nil || fmt.Sprint(out.Outputs[0].Value) != "42" {
		t.Fatalf("outputs %+v", out.Outputs)
	}
	if out.Outputs[1].Err == nil {
		t.Errorf("output of a missing field has no error: %+v", out.Outputs[1])
	}
	data, ok := out.Data.(map[string]any)
	if !ok || fmt.Sprint(data["response"]) != "map[got:42]" {
		t.Errorf("data %v", out.Data)
	}
}

// The outcome's Err is the runner's own error, so the engine can tell a
// journal failure from an op failure.
func TestEvaluateKeepsTheRunnersError(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	sentinel := errors.New("journal save failed")
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": "http://example.invalid", "n": 1},
		Step:       op.Step{StepName: "send", StepID: "x"},
		Runner: op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
			return op.Result{}, fmt.Errorf("op %s: %w", c.Name, sentinel)
		}),
	})
	if out.Phase != eval.Broken || !errors.Is(out.Err, sentinel) {
		t.Fatalf("outcome %s, err %v; want broken with the runner's error", out.Phase, out.Err)
	}
	out = p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": "http://example.invalid", "n": 1},
		Step:       op.Step{StepName: "send", StepID: "y"},
		Runner: op.RunnerFunc(func(ctx context.Context, c *op.Call) (op.Result, error) {
			return op.Result{}, op.Permanentf("bad request")
		}),
	})
	if out.Phase != eval.Failed || out.Reason != eval.ReasonOp {
		t.Fatalf("outcome %s %s; want failed for a permanent op error", out.Phase, out.Reason)
	}
}

func TestConditionAndCheck(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1})
	ok, err := p.Condition(`status.a.succeeded && context.n == 2`, map[string]any{
		"status": map[string]any{"a": map[string]any{"succeeded": true}}, "context": map[string]any{"n": 2}})
	if err != nil || !ok {
		t.Fatalf("condition = %v, %v", ok, err)
	}
	if _, err := p.Condition(`status.x.nope`, map[string]any{"status": map[string]any{}}); err == nil {
		t.Error("a condition over a missing field has no error")
	}
	if err := p.Check(eval.Definition{Name: "post", Template: post}); err != nil {
		t.Fatal(err)
	}
	err = p.Check(eval.Definition{Name: "bad", Template: "x: int & \"s\"\n"})
	if err == nil || !strings.Contains(err.Error(), `definition "bad"`) {
		t.Fatalf("check of a bad template: %v", err)
	}
}

// The runaways of issue 7: each fails its own step, with a reason that
// says which bound it hit, the worker is replaced, and the parent stays
// small.
func TestRunawayIsStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("spends seconds of CPU per runaway")
	}
	p := newPool(t, sandbox.Options{Workers: 1, EvalTimeout: 3 * time.Second, MemoryLimit: 512 << 20})
	peak := watchWorkers(t, p)
	for _, tc := range []struct{ name, template string }{
		{"repeat", repeat},
		{"comprehension", comprehension},
		{"endless", "import \"list\"\nx: [for i in list.Range(0, 1e12, 1) if i < 0 {i}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Stats().Started
			out := p.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: tc.name, Template: tc.template},
				Step:       op.Step{StepName: "s-" + tc.name, StepID: "id-" + tc.name},
			})
			if out.Phase != eval.Failed || (out.Reason != eval.ReasonTimeout && out.Reason != eval.ReasonMemory) {
				t.Fatalf("outcome %s %s: %s", out.Phase, out.Reason, out.Message)
			}
			want := fmt.Sprintf("step %q (definition %q)", "s-"+tc.name, tc.name)
			if !strings.Contains(out.Message, want) {
				t.Errorf("message %q does not name %s", out.Message, want)
			}
			t.Logf("%s: %s", out.Reason, out.Message)
			// The worker is replaced, and the next evaluation works.
			good := p.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "ok", Template: "x: 1\n"}})
			if good.Phase != eval.Succeeded {
				t.Fatalf("after the runaway: %s %s", good.Phase, good.Message)
			}
			if p.Stats().Started != before+1 {
				t.Errorf("workers started: %d, want %d", p.Stats().Started, before+1)
			}
		})
	}
	hwm := procStatus(t, "self", "VmHWM")
	t.Logf("parent peak RSS %d MiB, workers' peak RSS %d MiB", hwm>>20, peak()>>20)
	if hwm > 300<<20 {
		t.Errorf("parent peak RSS %d MiB, want under 300", hwm>>20)
	}
}

// The two runaway definitions of issue 7.
const (
	repeat        = "import \"list\"\nx: list.Repeat([\"x\"], 10000000)\n"
	comprehension = "import \"list\"\nx: [for i in list.Range(0, 10000, 1) for j in list.Range(0, 10000, 1) {i * j}]\n"
)

// blocker is an HTTP endpoint whose requests wait for release.
func blocker(t *testing.T) (url string, entered <-chan struct{}, release func()) {
	in := make(chan struct{}, 16)
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-gate
		fmt.Fprint(w, `{"got": 1}`)
	}))
	var once sync.Once
	rel := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { rel(); srv.Close() })
	return srv.URL, in, rel
}

// A session whose worker is killed for another session's overrun comes
// back Interrupted, not Failed; after MaxInterruptions in a row it fails.
func TestBystandersAreInterrupted(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1, EvalTimeout: time.Second, MaxInterruptions: 2})
	runaway := eval.Request{Definition: eval.Definition{Name: "runaway",
		Template: "import \"list\"\nx: [for i in list.Range(0, 1e12, 1) if i < 0 {i}]\n"}}
	bystander := eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Step:       op.Step{StepName: "by", StepID: "run-by-1"},
	}
	for i := 1; i <= 2; i++ {
		url, entered, release := blocker(t)
		bystander.Parameters = map[string]any{"url": url, "n": 1}
		outc := make(chan eval.Outcome, 1)
		go func() { outc <- p.Evaluate(context.Background(), bystander) }()
		<-entered // the bystander waits in its op call, in the parent
		bad := p.Evaluate(context.Background(), runaway)
		if bad.Phase != eval.Failed || bad.Reason != eval.ReasonTimeout {
			t.Fatalf("runaway: %s %s: %s", bad.Phase, bad.Reason, bad.Message)
		}
		// Its worker is gone, but its POST is still out: the evaluation
		// ends only after it, so that its journal record is written
		// before the attempt is evaluated again.
		select {
		case out := <-outc:
			t.Fatalf("round %d: the bystander ended (%s) while its op call still ran", i, out.Phase)
		case <-time.After(200 * time.Millisecond):
		}
		release()
		out := <-outc
		want, reason := eval.Interrupted, eval.ReasonInterrupted
		if i == 2 {
			want = eval.Failed // the second interruption in a row
		}
		if out.Phase != want || out.Reason != reason {
			t.Fatalf("bystander, round %d: %s %s: %s; want %s %s", i, out.Phase, out.Reason, out.Message, want, reason)
		}
		t.Logf("round %d: %s", i, out.Message)
	}
	url, _, release := blocker(t)
	release()
	bystander.Parameters = map[string]any{"url": url, "n": 1}
	bystander.Step.StepID = "run-by-2"
	if out := p.Evaluate(context.Background(), bystander); out.Phase != eval.Succeeded {
		t.Fatalf("bystander alone: %s %s", out.Phase, out.Message)
	}
}

// Only CUE time counts: neither waiting for the one worker behind others
// nor the parent's time in an op call.
func TestOnlyCUETimeCounts(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1, EvalTimeout: 2 * time.Second})
	slow := eval.Request{Definition: eval.Definition{Name: "slow",
		Template: "import \"list\"\nx: len([for i in list.Range(0, 2000, 1) if i > 0 {i * 2}])\n"}}
	// Enough evaluations queued at once to wait well over the bound in
	// all: doubled until the queue lasts three bounds.
	queued := 0
	for n := 32; n <= 4096; n *= 2 {
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := slow // another name each: compiled anew, not from the cache
				req.Definition.Name = fmt.Sprintf("slow-%d-%d", n, i)
				if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
					t.Errorf("queued evaluation: %s %s: %s", out.Phase, out.Reason, out.Message)
				}
			}()
		}
		wg.Wait()
		t.Logf("%d evaluations queued at once took %s in all, bound 2s", n, time.Since(start))
		if t.Failed() {
			return
		}
		if time.Since(start) > 3*2*time.Second {
			queued = n
			break
		}
	}
	if queued == 0 {
		t.Fatal("the queue never lasted well over the bound; the test proves nothing")
	}

	// An op call that takes longer than the bound, in the parent.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Second)
		fmt.Fprint(w, `{"got": 1}`)
	}))
	defer srv.Close()
	out := p.Evaluate(context.Background(), eval.Request{
		Definition: eval.Definition{Name: "post", Template: post},
		Parameters: map[string]any{"url": srv.URL, "n": 1},
	})
	if out.Phase != eval.Succeeded {
		t.Fatalf("a slow op call: %s %s: %s", out.Phase, out.Reason, out.Message)
	}
}

// watchWorkers samples the workers' RSS until the test ends and returns
// a function that reports the peak seen.
func watchWorkers(t *testing.T, p *sandbox.Pool) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			for _, pid := range p.PIDs() {
				if rss := procStatusOf(strconv.Itoa(pid), "VmRSS"); rss > peak.Load() {
					peak.Store(rss)
				}
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return peak.Load
}

func procStatus(t *testing.T, pid, field string) int64 {
	v := procStatusOf(pid, field)
	if v < 0 {
		t.Fatalf("no %s in /proc/%s/status", field, pid)
	}
	return v
}

func procStatusOf(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// No worker to be had is the pool's trouble, not the step's: the outcome
// is Interrupted, every time, never Failed.
func TestNoWorkerIsInterrupted(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "worker")
	exe, err := os.ReadFile("/bin/true") // starts, and exits at once
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := sandbox.New(sandbox.Options{Ops: testOps(), Binary: bin, Workers: 1, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		out := p.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "ok", Template: "x: 1\n"},
			Step: op.Step{StepName: "s", StepID: "same-attempt"}})
		if out.Phase != eval.Interrupted {
			t.Fatalf("evaluation %d without a worker: %s %s: %s", i, out.Phase, out.Reason, out.Message)
		}
		if i == 4 {
			t.Log(out.Message)
		}
	}
	// Check and Condition say so, for the definition reconciler to retry.
	if err := p.Check(eval.Definition{Name: "ok", Template: "x: 1\n"}); !errors.Is(err, eval.ErrInterrupted) {
		t.Errorf("check without a worker: %v", err)
	}
	if _, err := p.Condition("true", nil); !errors.Is(err, eval.ErrInterrupted) {
		t.Errorf("condition without a worker: %v", err)
	}
}

// The pool runs one worker while it keeps up. An evaluation held long
// (here a runaway) gets the others a spare, so they do not wait behind
// it; the spare is stopped once idle, and Stats does not count that as a
// death.
func TestSpareWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("spends seconds of CPU on a runaway")
	}
	p := newPool(t, sandbox.Options{Workers: 2, EvalTimeout: 4 * time.Second,
		BusyAfter: 50 * time.Millisecond, IdleAfter: 200 * time.Millisecond})
	if n := len(p.PIDs()); n != 1 {
		t.Fatalf("workers at the start: %d, want 1", n)
	}
	first := p.PIDs()[0]
	runaway := make(chan eval.Outcome, 1)
	go func() {
		runaway <- p.Evaluate(context.Background(), eval.Request{
			Definition: eval.Definition{Name: "endless", Template: "import \"list\"\nx: [for i in list.Range(0, 1e12, 1) if i < 0 {i}]\n"},
			Step:       op.Step{StepName: "runaway", StepID: "runaway-1"}})
	}()
	time.Sleep(300 * time.Millisecond) // the runaway holds its worker past BusyAfter
	good := p.Evaluate(context.Background(), eval.Request{Definition: eval.Definition{Name: "ok", Template: "x: 1\n"}})
	select {
	case out := <-runaway:
		t.Fatalf("the good evaluation waited for the runaway to end (%s %s)", out.Phase, out.Reason)
	default:
	}
	if good.Phase != eval.Succeeded {
		t.Fatalf("the good evaluation: %s %s", good.Phase, good.Message)
	}
	if n := len(p.PIDs()); n != 2 {
		t.Errorf("workers while the runaway runs: %d, want 2", n)
	}
	for deadline := time.Now().Add(3 * time.Second); len(p.PIDs()) != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the idle spare was not stopped: workers %v", p.PIDs())
		}
	}
	if pids := p.PIDs(); pids[0] != first {
		t.Errorf("the worker left is %d, want the runaway's %d", pids[0], first)
	}
	if out := <-runaway; out.Phase != eval.Failed || out.Reason != eval.ReasonTimeout {
		t.Errorf("the runaway: %s %s, want failed %s", out.Phase, out.Reason, eval.ReasonTimeout)
	}
	// Its worker killed and no other left, one is started at once.
	for deadline := time.Now().Add(5 * time.Second); len(p.PIDs()) != 1 || p.Stats().Started != 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no worker started after the runaway's was killed: %v, stats %+v", p.PIDs(), p.Stats())
		}
	}
	if st := p.Stats(); st.Started != 3 || st.Killed != 1 || st.Died != 0 {
		t.Errorf("stats %+v, want 3 started (first, spare, replacement), 1 killed, 0 died", st)
	}
}

// twoGets makes two op calls that need nothing from each other: the
// worker sends both before it waits for either result.
const twoGets = `
import "vela/op"

a: op.#HTTPGet & {url: parameter.url + "/a"}
b: op.#HTTPGet & {url: parameter.url + "/b"}
parameter: url: string
`

// A session whose op calls run side by side takes the worker's CUE token
// back once, however their results and other sessions interleave: a
// session that took it twice waited for itself until its bound killed the
// worker (seen as a step of a trivial template failing after a minute).
func TestParallelCallsTakeTheTokenBackOnce(t *testing.T) {
	p := newPool(t, sandbox.Options{Workers: 1, EvalTimeout: 5 * time.Second, BusyAfter: time.Hour})
	srv, hits := counter(t)
	const sessions, parallel = 400, 16
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out := p.Evaluate(context.Background(), eval.Request{
				Definition: eval.Definition{Name: "two-gets", Template: twoGets},
				Parameters: map[string]any{"url": srv.URL},
				Step:       op.Step{StepName: "s", StepID: fmt.Sprintf("run-%d-s", i)},
			})
			if out.Phase != eval.Succeeded {
				t.Errorf("session %d: %s %s: %s", i, out.Phase, out.Reason, out.Message)
			}
		}()
	}
	wg.Wait()
	if got := hits.Load(); got != 2*sessions {
		t.Errorf("the endpoint got %d hits, want %d", got, 2*sessions)
	}
	if s := p.Stats(); s.Killed != 0 {
		t.Errorf("%d workers were killed for an overrun; no evaluation here runs long", s.Killed)
	}
}
