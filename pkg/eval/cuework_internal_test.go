package eval

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"cuelang.org/go/cue"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

func newTestEvaluator(t *testing.T, opts Options) *Evaluator {
	t.Helper()
	if opts.Ops == nil {
		opts.Ops = op.NewRegistry()
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A panic in CUE work becomes an error, and the shard it happened on is
// replaced: its context may be half updated.
func TestWithCUECatchesPanics(t *testing.T) {
	for _, unbounded := range []bool{false, true} {
		t.Run(fmt.Sprintf("unbounded=%v", unbounded), func(t *testing.T) { testWithCUECatchesPanics(t, unbounded) })
	}
}

func testWithCUECatchesPanics(t *testing.T, unbounded bool) {
	e := newTestEvaluator(t, Options{Shards: 1, Unbounded: unbounded})
	sh := e.shards[0].Load()
	err := e.withCUE(context.Background(), 0, sh, func() {
		var m map[string]int
		m["x"] = 1 // assignment to a nil map
	})
	var perr *panicError
	if !errors.As(err, &perr) {
		t.Fatalf("withCUE returned %v, want a panic error", err)
	}
	if perr.at == "" || len(perr.stack) == 0 {
		t.Errorf("panic error %q names no site or has no stack", perr)
	}
	if e.shards[0].Load() == sh {
		t.Error("the shard that panicked is still in use")
	}
	if err := e.withCUE(context.Background(), 0, sh, func() {}); !errors.Is(err, errShardLost) {
		t.Errorf("work on the abandoned shard: %v, want errShardLost", err)
	}
	if err := e.Check(Definition{Name: "ok", Template: "x: 1\n"}); err != nil {
		t.Errorf("after a panic, a good template: %v", err)
	}
}

// A Value whose work panics reports it, naming what it evaluated.
func TestValuePanicIsAnError(t *testing.T) {
	e := newTestEvaluator(t, Options{Shards: 1})
	out := e.Evaluate(context.Background(), Request{Definition: Definition{Name: "d", Template: "x: 1\n"}, Step: op.Step{StepName: "s"}})
	if out.Phase != Succeeded {
		t.Fatalf("%s: %s", out.Phase, out.Message)
	}
	err := out.Value.use(`valueFrom "x"`, func(*shard, cue.Value) { panic("boom") })
	if err == nil || !contains(err.Error(), `step "s" (definition "d"): valueFrom "x"`, "boom") {
		t.Errorf("err = %v, want one naming the step, definition, expression and the panic", err)
	}
	// The value is rebuilt on the replacement shard.
	if x, err := out.Value.Eval("x + 1"); err != nil || fmt.Sprint(x) != "2" {
		t.Errorf("after the panic, Eval = %v, %v; want 2", x, err)
	}
}

// Only the time spent evaluating counts: work queued behind a long stretch
// of CUE work on its shard does not time out, however long it waits.
func TestWaitingForTheShardDoesNotCount(t *testing.T) {
	e := newTestEvaluator(t, Options{Shards: 1, EvalTimeout: 100 * time.Millisecond})
	def := Definition{Name: "quick", Template: "x: 1 + 1\n"}
	sh := e.shards[0].Load()
	if err := sh.acquire(context.Background()); err != nil { // someone else's work
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([]Outcome, 4)
	checks := make([]error, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = e.Evaluate(context.Background(), Request{Definition: def})
			checks[i] = e.Check(def)
		}()
	}
	time.Sleep(5 * e.opts.EvalTimeout)
	sh.release()
	wg.Wait()
	for i, out := range outs {
		if out.Phase != Succeeded {
			t.Errorf("evaluation %d queued behind other work: %s %s %q", i, out.Phase, out.Reason, out.Message)
		}
		if checks[i] != nil {
			t.Errorf("check %d queued behind other work: %v", i, checks[i])
		}
	}
}

// Work queued behind a runaway moves to the shard that replaces it and
// succeeds; the runaway alone fails.
func TestQueuedBehindARunaway(t *testing.T) {
	e := newTestEvaluator(t, Options{Shards: 1, EvalTimeout: 300 * time.Millisecond})
	slow := Definition{Name: "slow", Template: `
import "list"

n: 1500
grid: [for i in list.Range(0, n, 1) for j in list.Range(0, n, 1) {i * j}]
total: len(grid)
`}
	// An evaluation whose value lives on the shard the runaway will take.
	half := e.Evaluate(context.Background(), Request{Definition: Definition{Name: "half", Template: "x: 2\n"}})
	sh := e.shards[0].Load()
	runaway := make(chan Outcome, 1)
	go func() { runaway <- e.Evaluate(context.Background(), Request{Definition: slow}) }()
	for len(sh.sem) == 0 { // the runaway holds the shard
		runtime.Gosched()
	}
	const queued = 4
	outs := make(chan Outcome, queued)
	for i := 0; i < queued; i++ {
		go func() {
			outs <- e.Evaluate(context.Background(), Request{Definition: Definition{Name: "good", Template: fmt.Sprintf("x: %d + 1\n", i)}})
		}()
	}
	if out := <-runaway; out.Phase != Failed || out.Reason != ReasonTimeout || !contains(out.Message, `definition "slow"`) {
		t.Errorf("runaway: %s %s %q, want failed EvalTimeout naming the definition", out.Phase, out.Reason, out.Message)
	}
	for i := 0; i < queued; i++ {
		if out := <-outs; out.Phase != Succeeded {
			t.Errorf("queued behind the runaway: %s %s %q", out.Phase, out.Reason, out.Message)
		}
	}
	if half.Phase != Succeeded {
		t.Fatalf("half: %s %q", half.Phase, half.Message)
	}
	if x, err := half.Value.Eval("x * 2"); err != nil || fmt.Sprint(x) != "4" {
		t.Errorf("a value from the abandoned shard: Eval = %v, %v; want 4", x, err)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
