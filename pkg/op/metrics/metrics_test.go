package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/netfence"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/metrics"
)

// prometheus is a fake of Prometheus's /api/v1/query that answers with
// the samples it is set to and counts the queries.
type prometheus struct {
	*httptest.Server
	mu      sync.Mutex
	queries []string
	reply   func(w http.ResponseWriter)
}

func startPrometheus(t *testing.T) *prometheus {
	t.Helper()
	p := &prometheus{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		p.mu.Lock()
		p.queries = append(p.queries, r.Form.Get("query"))
		reply := p.reply
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		reply(w)
	}))
	t.Cleanup(p.Close)
	p.samples("1")
	return p
}

// samples makes the fake answer a vector with one sample per value.
func (p *prometheus) samples(values ...string) {
	var rs []string
	for i, v := range values {
		rs = append(rs, fmt.Sprintf(`{"metric":{"pod":"p%d"},"value":[1700000000,%q]}`, i, v))
	}
	body := `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(rs, ",") + `]}}`
	p.set(func(w http.ResponseWriter) { _, _ = w.Write([]byte(body)) })
}

func (p *prometheus) set(reply func(w http.ResponseWriter)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reply = reply
}

func (p *prometheus) hits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queries)
}

// clock is a test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

var testStep = op.Step{RunUID: "uid-1", RunName: "run", Namespace: "team-a", StepName: "check", StepID: "check-1"}

func newCall(f *metrics.Family, p *metrics.Params, step op.Step, vars op.Vars) *op.Call {
	o := f.Ops()["promCheck"]
	return &op.Call{Name: op.Name{Provider: "metrics", Do: "promCheck"}, Path: "check",
		Op: o, Params: p, Class: o.Class(p), Step: step, Env: op.Env{Vars: vars}}
}

func newJournal(t *testing.T) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), journal.NewMemory(), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A check is evaluated again and again, as the step waits on it: result
// turns true once the condition has held for duration without a break,
// failed once it has failed for failDuration without a break. Each
// evaluation queries Prometheus once.
func TestCheckOverTime(t *testing.T) {
	type eval struct {
		after  time.Duration // clock advance before this evaluation
		value  string
		result bool
		failed bool
	}
	for _, tc := range []struct {
		name  string
		evals []eval
	}{{
		name: "holds for duration",
		evals: []eval{
			{0, "0.97", false, false},
			{3 * time.Minute, "0.96", false, false},
			{2 * time.Minute, "0.99", true, false},
			{time.Minute, "0.95", true, false},
		},
	}, {
		name: "a break starts the count again",
		evals: []eval{
			{0, "0.97", false, false},
			{4 * time.Minute, "0.5", false, false},
			{time.Minute, "0.97", false, false},
			{4 * time.Minute, "0.97", false, false},
			{time.Minute, "0.97", true, false},
		},
	}, {
		name: "fails after failDuration",
		evals: []eval{
			{0, "0.5", false, false},
			{time.Minute, "0.4", false, false},
			{time.Minute, "0.4", false, true},
		},
	}, {
		name: "a success between failures starts the count again",
		evals: []eval{
			{0, "0.5", false, false},
			{90 * time.Second, "0.99", false, false},
			{10 * time.Second, "0.5", false, false},
			{90 * time.Second, "0.5", false, false},
			{30 * time.Second, "0.5", false, true},
		},
	}, {
		name: "NaN does not meet the condition",
		evals: []eval{
			{0, "NaN", false, false},
			{2 * time.Minute, "NaN", false, true},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			prom := startPrometheus(t)
			clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			f := metrics.New(metrics.Options{Now: clk.now})
			j := newJournal(t)
			p := &metrics.Params{Query: `sum(rate(ok[1m]))/sum(rate(all[1m]))`, MetricEndpoint: prom.URL,
				Condition: ">=0.95", Duration: "5m", FailDuration: "2m"}
			for i, e := range tc.evals {
				clk.advance(e.after)
				prom.samples(e.value)
				res, err := op.Direct.Run(context.Background(), newCall(f, p, testStep, j))
				if err != nil {
					t.Fatalf("evaluation %d: %v", i+1, err)
				}
				r := res.Returns.(metrics.Returns)
				if r.Result != e.result || r.Failed != e.failed || r.Value != e.value {
					t.Errorf("evaluation %d (value %s): result %v failed %v value %s, want %v %v; %s",
						i+1, e.value, r.Result, r.Failed, r.Value, e.result, e.failed, r.Message)
				}
				if r.Message == "" {
					t.Errorf("evaluation %d: no message", i+1)
				}
			}
			if prom.hits() != len(tc.evals) {
				t.Errorf("%d evaluations queried %d times", len(tc.evals), prom.hits())
			}
		})
	}
}

// The count belongs to the step attempt: a retry of the step starts it
// afresh, and so does another check at another path of the same attempt.
func TestCheckCountsPerAttempt(t *testing.T) {
	prom := startPrometheus(t)
	prom.samples("1")
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f := metrics.New(metrics.Options{Now: clk.now})
	j := newJournal(t)
	p := &metrics.Params{Query: "up", MetricEndpoint: prom.URL, Condition: "==1", Duration: "1m", FailDuration: "1m"}
	run := func(step op.Step, path string) metrics.Returns {
		t.Helper()
		call := newCall(f, p, step, j)
		call.Path = path
		res, err := op.Direct.Run(context.Background(), call)
		if err != nil {
			t.Fatal(err)
		}
		return res.Returns.(metrics.Returns)
	}
	run(testStep, "check")
	clk.advance(time.Minute)
	if !run(testStep, "check").Result {
		t.Fatal("the condition held for duration, and result is false")
	}
	retry := testStep
	retry.StepID = "check-2"
	if run(retry, "check").Result {
		t.Error("a new attempt's first evaluation passed on the old attempt's count")
	}
	if run(testStep, "other").Result {
		t.Error("a check at another path passed on the count of the first")
	}
}

// Each failure says whether a retry can help; bad parameters and a
// fenced endpoint query nothing.
func TestCheckFailures(t *testing.T) {
	fence, err := netfence.New(context.Background(), netfence.Config{DenyLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		fence     *netfence.Policy
		edit      func(*metrics.Params)
		reply     func(http.ResponseWriter)
		samples   []string
		noVars    bool
		permanent bool
		noQuery   bool
		contains  string
	}{
		{name: "no sample yet", samples: []string{}, contains: "returned no sample yet"},
		{name: "more than one sample", samples: []string{"1", "2"}, permanent: true, contains: "returned 2 samples"},
		{name: "query rejected", permanent: true, contains: "bad_data", reply: func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error at char 4"}`))
		}},
		{name: "server unavailable", contains: "503", reply: func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}},
		{name: "bad condition", edit: func(p *metrics.Params) { p.Condition = "about 1" },
			permanent: true, noQuery: true, contains: `condition "about 1"`},
		{name: "bad duration", edit: func(p *metrics.Params) { p.Duration = "5 minutes" },
			permanent: true, noQuery: true, contains: "duration"},
		{name: "bad endpoint", edit: func(p *metrics.Params) { p.MetricEndpoint = "prometheus:9090" },
			permanent: true, noQuery: true, contains: "metricEndpoint"},
		{name: "fenced endpoint", fence: fence, permanent: true, noQuery: true, contains: "denied by rule"},
		{name: "no variable store", noVars: true, permanent: true, contains: "variables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom := startPrometheus(t)
			if tc.samples != nil {
				prom.samples(tc.samples...)
			}
			if tc.reply != nil {
				prom.set(tc.reply)
			}
			p := &metrics.Params{Query: "up", MetricEndpoint: prom.URL, Condition: "==1", Duration: "1m", FailDuration: "1m"}
			if tc.edit != nil {
				tc.edit(p)
			}
			var vars op.Vars = newJournal(t)
			if tc.noVars {
				vars = nil
			}
			f := metrics.New(metrics.Options{Fence: tc.fence})
			_, err := op.Direct.Run(context.Background(), newCall(f, p, testStep, vars))
			if err == nil {
				t.Fatal("no error")
			}
			var oe *op.Error
			if !errors.As(err, &oe) || oe.Path != "check" {
				t.Errorf("error %v is not an *op.Error naming the call", err)
			}
			if op.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", op.IsPermanent(err), tc.permanent, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
			if tc.noQuery && prom.hits() != 0 {
				t.Errorf("Prometheus was queried %d times", prom.hits())
			}
		})
	}
}

// A scalar result is a value too.
func TestCheckScalar(t *testing.T) {
	prom := startPrometheus(t)
	prom.set(func(w http.ResponseWriter) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`))
	})
	f := metrics.New(metrics.Options{})
	p := &metrics.Params{Query: "scalar(x)", MetricEndpoint: prom.URL, Condition: "> 41.5", Duration: "0s", FailDuration: "1m"}
	res, err := op.Direct.Run(context.Background(), newCall(f, p, testStep, newJournal(t)))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Returns.(metrics.Returns); !r.Result || r.Value != "42" {
		t.Errorf("returns %+v; want result true at once (duration 0s) with value 42", r)
	}
}
