package journal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/builtin"
)

// counter is a fake base runner: it counts the calls per key and answers
// the n-th call of a key (from 1) with result.
type counter struct {
	mu     sync.Mutex
	calls  map[string]int
	result func(call *op.Call, n int) (op.Result, error)
}

func newCounter(result func(call *op.Call, n int) (op.Result, error)) *counter {
	return &counter{calls: map[string]int{}, result: result}
}

func (c *counter) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	c.mu.Lock()
	c.calls[call.Key()]++
	n := c.calls[call.Key()]
	c.mu.Unlock()
	return c.result(call, n)
}

func (c *counter) n(stepID, path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[journal.Key(stepID, path)]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, n := range c.calls {
		t += n
	}
	return t
}

func call(stepID, path string, class op.Class) *op.Call {
	return &op.Call{
		Name:  op.Name{Provider: "test", Do: path},
		Path:  path,
		Class: class,
		Step:  op.Step{RunUID: "uid", RunName: "run", Namespace: "ns", StepName: "step", StepID: stepID},
	}
}

// normal is v after a JSON round trip, the form a replayed result takes.
func normal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func open(t *testing.T, s journal.Store, l journal.Limits) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), s, l)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// outcome is what one evaluation of a call gave, in comparable form.
type outcome struct {
	Returns any
	Stop    op.StopKind
	Message string
	Err     string
}

func outcomeOf(t *testing.T, res op.Result, err error) outcome {
	t.Helper()
	o := outcome{Returns: normal(t, res.Returns), Message: res.Message}
	if res.Stop != nil {
		o.Stop = res.Stop.Kind
	}
	if err != nil {
		o.Err = err.Error()
	}
	return o
}

var errFlaky = errors.New("connection reset")

// TestRule runs one call at path "p" once per entry of evaluations (the
// StepID of each evaluation) and checks what each evaluation saw and how
// often the base runner was reached.
func TestRule(t *testing.T) {
	sent := map[string]any{"statusCode": 200, "body": map[string]any{"id": "x-1", "tags": []any{"a", 1, true, nil}}}
	suspend := func(*op.Call, int) (op.Result, error) {
		return op.Result{Stop: &op.Stop{Kind: op.Suspend, Message: "approve?"}, Message: "approve?"}, nil
	}
	errCall := (&op.Error{Op: op.Name{Provider: "test", Do: "p"}, Path: "p", Err: errFlaky}).Error()

	tests := []struct {
		name        string
		class       op.Class
		result      func(call *op.Call, n int) (op.Result, error)
		evaluations []string
		want        []outcome
		wantCalls   int
		wantEntries []string
	}{{
		name:  "idempotent runs every time",
		class: op.Idempotent,
		result: func(_ *op.Call, n int) (op.Result, error) {
			return op.Result{Returns: map[string]any{"n": n}}, nil
		},
		evaluations: []string{"s1", "s1", "s1"},
		want: []outcome{
			{Returns: map[string]any{"n": 1.0}},
			{Returns: map[string]any{"n": 2.0}},
			{Returns: map[string]any{"n": 3.0}},
		},
		wantCalls: 3,
	}, {
		name:  "effect runs once and is replayed",
		class: op.Effect,
		result: func(*op.Call, int) (op.Result, error) {
			return op.Result{Returns: sent, Message: "sent"}, nil
		},
		evaluations: []string{"s1", "s1", "s1", "s1"},
		want: []outcome{
			{Returns: normal(t, sent), Message: "sent"},
			{Returns: normal(t, sent), Message: "sent"},
			{Returns: normal(t, sent), Message: "sent"},
			{Returns: normal(t, sent), Message: "sent"},
		},
		wantCalls:   1,
		wantEntries: []string{"s1/p"},
	}, {
		name:  "effect without returns is replayed without returns",
		class: op.Effect,
		result: func(*op.Call, int) (op.Result, error) {
			return op.Result{}, nil
		},
		evaluations: []string{"s1", "s1"},
		want:        []outcome{{}, {}},
		wantCalls:   1,
		wantEntries: []string{"s1/p"},
	}, {
		name:  "effect error is not recorded",
		class: op.Effect,
		result: func(call *op.Call, n int) (op.Result, error) {
			if n == 1 {
				return op.Result{}, &op.Error{Op: call.Name, Path: call.Path, Err: errFlaky}
			}
			return op.Result{Returns: map[string]any{"n": n}}, nil
		},
		evaluations: []string{"s1", "s1", "s1"},
		want: []outcome{
			{Returns: nil, Err: errCall},
			{Returns: map[string]any{"n": 2.0}},
			{Returns: map[string]any{"n": 2.0}},
		},
		wantCalls:   2,
		wantEntries: []string{"s1/p"},
	}, {
		name:  "effect runs again in a new step attempt",
		class: op.Effect,
		result: func(call *op.Call, n int) (op.Result, error) {
			return op.Result{Returns: call.Step.StepID}, nil
		},
		evaluations: []string{"s1", "s1", "s2", "s2"},
		want:        []outcome{{Returns: "s1"}, {Returns: "s1"}, {Returns: "s2"}, {Returns: "s2"}},
		wantCalls:   2,
		wantEntries: []string{"s1/p", "s2/p"},
	}, {
		name:        "suspend stops once per step attempt",
		class:       op.Control,
		result:      suspend,
		evaluations: []string{"s1", "s1", "s1", "s2", "s2"},
		want: []outcome{
			{Stop: op.Suspend, Message: "approve?"},
			{},
			{},
			{Stop: op.Suspend, Message: "approve?"},
			{},
		},
		wantCalls:   5,
		wantEntries: []string{"s1/p", "s2/p"},
	}, {
		name:  "other control ops are not recorded",
		class: op.Control,
		result: func(*op.Call, int) (op.Result, error) {
			return op.Result{Stop: &op.Stop{Kind: op.Wait, Message: "not yet"}, Message: "not yet"}, nil
		},
		evaluations: []string{"s1", "s1"},
		want: []outcome{
			{Stop: op.Wait, Message: "not yet"},
			{Stop: op.Wait, Message: "not yet"},
		},
		wantCalls: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			base := newCounter(tt.result)
			j := open(t, journal.NewMemory(), journal.Limits{})
			r := j.Runner(base)
			var got []outcome
			for _, stepID := range tt.evaluations {
				res, err := r.Run(ctx, call(stepID, "p", tt.class))
				got = append(got, outcomeOf(t, res, err))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if n := base.total(); n != tt.wantCalls {
				t.Errorf("base called %d times, want %d", n, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.wantEntries, keys(j)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

// keys lists the journal's entry keys, sorted.
func keys(j *journal.Journal) []string {
	var out []string
	for k := range j.Data().Entries {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// evaluate runs calls in order, as the evaluator does, until one fails or
// stops; it returns the path it stopped at, or "" if every call ran.
func evaluate(t *testing.T, r op.Runner, calls ...*op.Call) string {
	t.Helper()
	for _, c := range calls {
		res, err := r.Run(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", c.Path, err)
		}
		if res.Stop != nil {
			return c.Path
		}
	}
	return ""
}

// TestTwoSuspendsInOneAttempt: the first suspend passes after its resume,
// the second still stops the first time it is reached, and the effect
// between them is sent once.
func TestTwoSuspendsInOneAttempt(t *testing.T) {
	base := newCounter(func(call *op.Call, _ int) (op.Result, error) {
		if call.Class == op.Control {
			return op.Result{Stop: &op.Stop{Kind: op.Suspend}}, nil
		}
		return op.Result{Returns: "ok"}, nil
	})
	j := open(t, journal.NewMemory(), journal.Limits{})
	r := j.Runner(base)
	steps := func(stepID string) []*op.Call {
		return []*op.Call{
			call(stepID, "approve", op.Control),
			call(stepID, "notify", op.Effect),
			call(stepID, "confirm", op.Control),
			call(stepID, "apply", op.Idempotent),
		}
	}

	for i, want := range []string{"approve", "confirm", "", ""} {
		if got := evaluate(t, r, steps("s1")...); got != want {
			t.Errorf("evaluation %d stopped at %q, want %q", i+1, got, want)
		}
	}
	if n := base.n("s1", "notify"); n != 1 {
		t.Errorf("notify sent %d times, want 1", n)
	}
	if n := base.n("s1", "apply"); n != 2 {
		t.Errorf("apply ran %d times, want 2", n)
	}
	if got := evaluate(t, r, steps("s2")...); got != "approve" {
		t.Errorf("new attempt stopped at %q, want approve", got)
	}
}

// TestBuiltinSuspend runs the real #Suspend through the journal.
func TestBuiltinSuspend(t *testing.T) {
	reg := op.NewRegistry().Add(builtin.New())
	name := op.Name{Provider: "builtin", Do: "suspend"}
	o, _ := reg.Lookup(name)
	c := &op.Call{
		Name: name, Path: "gate", Op: o, Class: o.Class(nil),
		Params: o.NewParams(), Step: op.Step{StepID: "s1"},
	}
	if err := json.Unmarshal([]byte(`{"duration":"30s","message":"wait for approval"}`), c.Params); err != nil {
		t.Fatal(err)
	}
	r := open(t, journal.NewMemory(), journal.Limits{}).Runner(op.Direct)

	res, err := r.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	want := &op.Stop{Kind: op.Suspend, Message: "wait for approval", Duration: 30 * time.Second}
	if diff := cmp.Diff(want, res.Stop); diff != "" {
		t.Errorf("first run stop (-want +got):\n%s", diff)
	}
	res, err = r.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(op.Result{}, res); diff != "" {
		t.Errorf("resumed run (-want +got):\n%s", diff)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	big := func(n int) journal.Entry {
		return journal.Entry{Returns: json.RawMessage(`"` + strings.Repeat("x", n) + `"`)}
	}
	tests := []struct {
		name    string
		limits  journal.Limits
		before  map[string]journal.Entry
		key     string
		entry   journal.Entry
		wantErr []string // parts of the error message; none: no error
	}{{
		name:   "entry within bounds",
		limits: journal.Limits{MaxEntryBytes: 100, MaxTotalBytes: 1000},
		key:    "s1/a", entry: big(50),
	}, {
		name:   "entry over its bound",
		limits: journal.Limits{MaxEntryBytes: 100, MaxTotalBytes: 1000},
		key:    "s1/a", entry: big(200),
		wantErr: []string{`"s1/a"`, "208 bytes", "bound of 100 bytes"},
	}, {
		name:   "journal over its bound",
		limits: journal.Limits{MaxEntryBytes: 100, MaxTotalBytes: 200},
		before: map[string]journal.Entry{"s1/a": big(60), "s1/b": big(60)},
		key:    "s1/c", entry: big(60),
		wantErr: []string{`"s1/c"`, "(68 bytes)", "241 bytes", "bound of 200 bytes"},
	}, {
		name:    "defaults",
		key:     "s1/a",
		entry:   big(journal.DefaultMaxEntryBytes),
		wantErr: []string{`"s1/a"`, fmt.Sprintf("bound of %d bytes", journal.DefaultMaxEntryBytes)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := journal.NewMemory()
			j := open(t, m, tt.limits)
			for k, e := range tt.before {
				if err := j.Record(ctx, k, e); err != nil {
					t.Fatal(err)
				}
			}
			before := m.Saves()
			err := j.Record(ctx, tt.key, tt.entry)
			_, stored := j.Lookup(tt.key)
			if tt.wantErr == nil {
				if err != nil || !stored {
					t.Fatalf("Record: %v, stored %v; want stored", err, stored)
				}
				return
			}
			if err == nil || !op.IsPermanent(err) {
				t.Fatalf("Record: %v, want a permanent error", err)
			}
			for _, part := range tt.wantErr {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			}
			if stored {
				t.Error("entry over a bound was stored")
			}
			if m.Saves() != before {
				t.Error("entry over a bound was saved")
			}
		})
	}
}

// TestEffectOverLimitFailsTheCall: the op ran but its result cannot be
// kept, so the call fails for good, in the one error shape.
func TestEffectOverLimitFailsTheCall(t *testing.T) {
	base := newCounter(func(*op.Call, int) (op.Result, error) {
		return op.Result{Returns: strings.Repeat("x", 500)}, nil
	})
	j := open(t, journal.NewMemory(), journal.Limits{MaxEntryBytes: 100})
	_, err := j.Runner(base).Run(context.Background(), call("s1", "p", op.Effect))
	var oe *op.Error
	if !errors.As(err, &oe) || !oe.Permanent || oe.Path != "p" {
		t.Fatalf("got %v, want a permanent *op.Error at p", err)
	}
}

func TestRecordWritesThrough(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{})
	r := j.Runner(newCounter(func(*op.Call, int) (op.Result, error) { return op.Result{Returns: 1}, nil }))
	for i, p := range []string{"a", "b", "c"} {
		if _, err := r.Run(ctx, call("s1", p, op.Effect)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(ctx, call("s1", p, op.Effect)); err != nil { // replayed
			t.Fatal(err)
		}
		if _, err := r.Run(ctx, call("s1", p, op.Idempotent)); err != nil {
			t.Fatal(err)
		}
		if got := m.Saves(); got != i+1 {
			t.Errorf("after %d effects: %d saves, want %d", i+1, got, i+1)
		}
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Saves(); got != 3 {
		t.Errorf("Flush of a clean journal saved: %d saves, want 3", got)
	}
}

// TestLostRecord: the Save after an effect fails, as in a crash between the
// effect and its record. The record is lost and the next evaluation, in
// this process or after a restart, calls the op again.
func TestLostRecord(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	base := newCounter(func(_ *op.Call, n int) (op.Result, error) {
		return op.Result{Returns: n}, nil
	})
	j := open(t, m, journal.Limits{})

	m.FailSaves(1)
	_, err := j.Runner(base).Run(ctx, call("s1", "p", op.Effect))
	if err == nil || op.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if _, ok := j.Lookup("s1/p"); ok {
		t.Error("a record whose Save failed is in the journal")
	}

	restarted := open(t, m, journal.Limits{})
	if _, err := restarted.Runner(base).Run(ctx, call("s1", "p", op.Effect)); err != nil {
		t.Fatal(err)
	}
	if n := base.n("s1", "p"); n != 2 {
		t.Errorf("base called %d times, want 2", n)
	}
	res, err := open(t, m, journal.Limits{}).Runner(base).Run(ctx, call("s1", "p", op.Effect))
	if err != nil || normal(t, res.Returns) != 2.0 {
		t.Errorf("after a second restart: %v, %v; want the replayed 2", res.Returns, err)
	}
	if n := base.n("s1", "p"); n != 2 {
		t.Errorf("base called %d times after replay, want 2", n)
	}
}

// TestLostSuspendRecord: a suspend whose record was not saved suspends
// again rather than passing.
func TestLostSuspendRecord(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{})
	r := j.Runner(newCounter(func(*op.Call, int) (op.Result, error) {
		return op.Result{Stop: &op.Stop{Kind: op.Suspend}}, nil
	}))
	m.FailSaves(1)
	if _, err := r.Run(ctx, call("s1", "gate", op.Control)); err == nil {
		t.Fatal("want the save error")
	}
	res, err := r.Run(ctx, call("s1", "gate", op.Control))
	if err != nil || res.Stop == nil {
		t.Errorf("got %+v, %v; want a suspend", res, err)
	}
}

func TestOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{})
	if err := j.Record(ctx, journal.Key("s1", "notify"), journal.Entry{Returns: json.RawMessage(`{"id":1}`), Message: "sent"}); err != nil {
		t.Fatal(err)
	}
	if err := j.Record(ctx, journal.Key("s1", "gate"), journal.Entry{Suspended: true}); err != nil {
		t.Fatal(err)
	}
	if err := j.PutVar("decision", map[string]any{"go": true, "n": 3}); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := journal.Data{
		Entries: map[string]journal.Entry{
			"s1/notify": {Returns: json.RawMessage(`{"id":1}`), Message: "sent"},
			"s1/gate":   {Suspended: true},
		},
		Vars: map[string]any{"decision": map[string]any{"go": true, "n": 3.0}},
	}
	if diff := cmp.Diff(want, j.Data()); diff != "" {
		t.Errorf("Data (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, open(t, m, journal.Limits{}).Data()); diff != "" {
		t.Errorf("Data after Open (-want +got):\n%s", diff)
	}
	if got, err := m.Load(ctx); err != nil || j.Size() != len(mustJSON(t, got)) {
		t.Errorf("Size %d, want the length of the stored JSON (%v)", j.Size(), err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVars(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{})

	if _, ok := j.GetVar("missing"); ok {
		t.Error("GetVar of a missing variable reported ok")
	}
	if err := j.PutVar("a", map[string]any{"list": []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := j.SetVar("b", "two"); err != nil {
		t.Fatal(err)
	}
	v, ok := j.GetVar("a")
	if diff := cmp.Diff(map[string]any{"list": []any{1.0, 2.0}}, v); !ok || diff != "" {
		t.Errorf("GetVar(a) (-want +got):\n%s", diff)
	}
	v.(map[string]any)["list"] = "changed"
	j.Vars()["b"] = "changed"
	if diff := cmp.Diff(map[string]any{"a": map[string]any{"list": []any{1.0, 2.0}}, "b": "two"}, j.Vars()); diff != "" {
		t.Errorf("copies handed out changed the journal (-want +got):\n%s", diff)
	}
	if err := j.PutVar("c", make(chan int)); !op.IsPermanent(err) {
		t.Errorf("PutVar of a channel: %v, want a permanent error", err)
	}
	if m.Saves() != 0 {
		t.Error("PutVar saved; want only Flush to save")
	}

	flush := func(wantSaves int) {
		t.Helper()
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if m.Saves() != wantSaves {
			t.Errorf("%d saves, want %d", m.Saves(), wantSaves)
		}
	}
	flush(1)
	flush(1) // clean

	for _, k := range []string{"s1/a", "s1/b", "s10/a", "s2/a"} {
		if err := j.Record(ctx, k, journal.Entry{Message: k}); err != nil {
			t.Fatal(err)
		}
	}
	live := map[string]bool{"s10": true, "s2": true}
	j.Retain(func(id string) bool { return live[id] })
	if diff := cmp.Diff([]string{"s10/a", "s2/a"}, keys(j)); diff != "" {
		t.Errorf("entries after Retain (-want +got):\n%s", diff)
	}
	flush(5) // drops alone do not make the journal dirty
	if diff := cmp.Diff([]string{"s1/a", "s1/b", "s10/a", "s2/a"}, keys(open(t, m, journal.Limits{}))); diff != "" {
		t.Errorf("stored entries before the next save (-want +got):\n%s", diff)
	}
	if err := j.PutVar("d", 4); err != nil {
		t.Fatal(err)
	}
	flush(6)
	if diff := cmp.Diff([]string{"s10/a", "s2/a"}, keys(open(t, m, journal.Limits{}))); diff != "" {
		t.Errorf("stored entries after the next save (-want +got):\n%s", diff)
	}

	j.Restarted(0)
	if len(j.Vars()) != 3 {
		t.Errorf("Restarted(0) dropped variables: %v", j.Vars())
	}
	j.Restarted(1)
	if d := j.Data(); len(d.Vars) != 0 || d.Restarts != 1 || len(d.Entries) != 2 {
		t.Errorf("after Restarted(1): %+v", d)
	}
	if err := j.PutVar("e", "after the restart"); err != nil {
		t.Fatal(err)
	}
	flush(7)
	if d := open(t, m, journal.Limits{}).Data(); !cmp.Equal(d.Vars, map[string]any{"e": "after the restart"}) || d.Restarts != 1 {
		t.Errorf("after Restarted and Open: %+v", d)
	}
}

func TestVarsOverLimit(t *testing.T) {
	j := open(t, journal.NewMemory(), journal.Limits{MaxTotalBytes: 100})
	err := j.PutVar("big", strings.Repeat("x", 200))
	if !op.IsPermanent(err) || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("got %v, want a permanent error naming the variable", err)
	}
	if _, ok := j.GetVar("big"); ok {
		t.Error("a variable over the bound was stored")
	}
}

// TestDoVar: the journal serves #DoVar as the run's op.Vars.
func TestDoVar(t *testing.T) {
	reg := op.NewRegistry().Add(builtin.New())
	name := op.Name{Provider: "builtin", Do: "var"}
	o, _ := reg.Lookup(name)
	j := open(t, journal.NewMemory(), journal.Limits{})
	run := func(params string) any {
		t.Helper()
		c := &op.Call{Name: name, Path: "v", Op: o, Params: o.NewParams(), Env: op.Env{Vars: j}, Step: op.Step{StepID: "s1"}}
		if err := json.Unmarshal([]byte(params), c.Params); err != nil {
			t.Fatal(err)
		}
		c.Class = o.Class(c.Params)
		res, err := j.Runner(op.Direct).Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return normal(t, res.Returns)
	}
	run(`{"method":"Put","path":"decision","value":{"approved":true}}`)
	got := run(`{"method":"Get","path":"decision"}`)
	if diff := cmp.Diff(map[string]any{"value": map[string]any{"approved": true}}, got); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
}

// TestConcurrent runs the steps of a DAG at once against one journal; run
// it with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{})
	base := newCounter(func(call *op.Call, _ int) (op.Result, error) {
		return op.Result{Returns: map[string]any{"step": call.Step.StepID}}, nil
	})
	r := j.Runner(base)

	const steps, evaluations = 16, 10
	var wg sync.WaitGroup
	for i := range steps {
		stepID := fmt.Sprintf("s%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range evaluations {
				res, err := r.Run(ctx, call(stepID, "notify", op.Effect))
				if err != nil {
					t.Error(err)
					return
				}
				if got := res.Returns.(map[string]any)["step"]; got != stepID {
					t.Errorf("%s got %v", stepID, got)
				}
				j.Lookup(journal.Key(stepID, "notify"))
				if err := j.PutVar(stepID, i); err != nil {
					t.Error(err)
				}
				if err := j.Flush(ctx); err != nil {
					t.Error(err)
				}
				_ = j.Size()
			}
		}()
	}
	wg.Wait()

	for i := range steps {
		if n := base.n(fmt.Sprintf("s%d", i), "notify"); n != 1 {
			t.Errorf("s%d: notify sent %d times, want 1", i, n)
		}
	}
	if diff := cmp.Diff(j.Data(), open(t, m, journal.Limits{}).Data()); diff != "" {
		t.Errorf("stored data differs from the journal after the last Flush (-journal +stored):\n%s", diff)
	}
}
