package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// The shipped request definition's shape, as pkg/eval's benchmark has it.
const request = `
import (
	"vela/op"
	"encoding/json"
)

req: op.#HTTPDo & {
	method: parameter.method
	url:    parameter.url
	request: {
		if parameter.body != _|_ {
			body: json.Marshal(parameter.body)
		}
		header: "Content-Type": "application/json"
	}
}
fail: op.#Steps & {
	if req.response.statusCode > 400 {
		requestFail: op.#Fail & {message: "request of \(parameter.url) is fail: \(req.response.statusCode)"}
	}
}
response: json.Unmarshal(req.response.body)
parameter: {
	url:    string
	method: *"GET" | "POST" | "PUT" | "DELETE"
	body?: {...}
}
`

// echo answers HTTP calls without a network, so only evaluation and the
// round trips to the worker are measured.
var echo = op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
	return op.Result{Returns: map[string]any{"statusCode": 200, "body": `{"ok":true,"id":42}`}}, nil
})

func benchRequest() eval.Request {
	return eval.Request{Definition: eval.Definition{Name: "request", Template: request},
		Parameters: map[string]any{"url": "http://127.0.0.1/x", "method": "POST", "body": map[string]any{"a": 1}},
		Context:    map[string]any{"name": "run", "namespace": "default", "stepName": "s", "stepSessionID": "s-1"},
		Step:       op.Step{StepName: "s", StepID: "s-1"}, Runner: echo, Outputs: []string{"response.id"}}
}

// One evaluation at a time through the pool: the latency of a step.
func BenchmarkPoolEvaluateRequest(b *testing.B) {
	p := newPool(b, sandbox0())
	req := benchRequest()
	if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
		b.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	b.ReportAllocs()
	cpu := startCPU(b, p)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
			b.Fatalf("outcome %s: %s", out.Phase, out.Message)
		}
	}
	cpu.report(b)
}

// The same evaluation in-process, for the pool's overhead: compare its
// cpu-ms/op with the pool benchmarks'.
func BenchmarkInProcessEvaluateRequest(b *testing.B) {
	ev, err := eval.New(eval.Options{Ops: testOps()})
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest()
	if out := ev.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
		b.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	b.ReportAllocs()
	cpu := startCPU(b, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := ev.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
			b.Fatalf("outcome %s: %s", out.Phase, out.Message)
		}
	}
	cpu.report(b)
}

// cpuMeter measures the CPU time of this process and of a pool's workers
// over a benchmark: what an evaluation costs in all, wherever it runs.
type cpuMeter struct {
	pids  []int
	start time.Duration
}

func startCPU(b *testing.B, p *sandbox.Pool) *cpuMeter {
	m := &cpuMeter{pids: []int{os.Getpid()}}
	if p != nil {
		m.pids = append(m.pids, p.PIDs()...)
	}
	m.start = m.total(b)
	return m
}

func (m *cpuMeter) total(b *testing.B) time.Duration {
	var sum time.Duration
	for _, pid := range m.pids {
		sum += procCPU(b, pid)
	}
	return sum
}

func (m *cpuMeter) report(b *testing.B) {
	b.StopTimer()
	used := m.total(b) - m.start
	b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// procCPU is the user+system time of process pid, from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	// Fields after the command (which may hold spaces) in parentheses;
	// utime and stime are the 14th and 15th, in clock ticks (100 Hz).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// Eight evaluations at once, as the controller's reconciles make them:
// the throughput of the pool.
func BenchmarkPoolEvaluateRequestParallel(b *testing.B) {
	p := newPool(b, sandbox0())
	req := benchRequest()
	if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
		b.Fatalf("outcome %s: %s", out.Phase, out.Message)
	}
	b.ReportAllocs()
	cpu := startCPU(b, p)
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if out := p.Evaluate(context.Background(), req); out.Phase != eval.Succeeded {
					b.Errorf("outcome %s: %s", out.Phase, out.Message)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	cpu.report(b)
}

// sandbox0 is the pool the binary uses by default.
func sandbox0() sandbox.Options { return sandbox.Options{} }
