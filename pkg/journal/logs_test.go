package journal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// TestLogBounds: #Log lines are bounded per line, per step and per run,
// the cuts are marked, and no log line keeps an effect from being recorded.
func TestLogBounds(t *testing.T) {
	ctx := context.Background()
	l := journal.Limits{MaxLogLineBytes: 100, MaxStepLogBytes: 1000, MaxRunLogBytes: 3000, MaxTotalBytes: 2000}
	for _, tc := range []struct {
		name  string
		steps int
		lines int
		line  func(step, i int) string
		check func(t *testing.T, d journal.Data)
	}{{
		name: "a long line is cut and says so", steps: 1, lines: 1,
		line: func(int, int) string { return strings.Repeat("x", 5000) },
		check: func(t *testing.T, d journal.Data) {
			got := d.Logs["s0"]
			if len(got) != 1 || len(got[0]) > 100 || !strings.HasSuffix(got[0], "(truncated, 5000 bytes)") {
				t.Errorf("lines %q", got)
			}
		},
	}, {
		name: "a step keeps its newest lines within its bound, the first saying how many went", steps: 1, lines: 200,
		line: func(_, i int) string { return fmt.Sprintf("line %03d", i) },
		check: func(t *testing.T, d journal.Data) {
			got := d.Logs["s0"]
			if n := jsonSize(t, got); n > 1000 {
				t.Errorf("step log is %d bytes, over 1000", n)
			}
			if last := got[len(got)-1]; last != "line 199" {
				t.Errorf("last line %q, want the newest", last)
			}
			want := fmt.Sprintf("… %d earlier lines dropped (log bound)", 200-(len(got)-1))
			if got[0] != want || d.LogsDropped["s0"] != 200-(len(got)-1) {
				t.Errorf("first line %q, dropped %d; want %q", got[0], d.LogsDropped["s0"], want)
			}
		},
	}, {
		name: "the run keeps its lines within its bound", steps: 10, lines: 50,
		line: func(s, i int) string { return fmt.Sprintf("step %d line %03d", s, i) },
		check: func(t *testing.T, d journal.Data) {
			if n := jsonSize(t, d.Logs); n > 3000+200 {
				t.Errorf("run log is %d bytes, over about 3000", n)
			}
			for s := 0; s < 10; s++ {
				got := d.Logs[fmt.Sprintf("s%d", s)]
				if len(got) < 2 || got[len(got)-1] != fmt.Sprintf("step %d line 049", s) || !strings.HasPrefix(got[0], "… ") {
					t.Errorf("step %d: %q", s, got)
				}
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := journal.NewMemory()
			j := open(t, m, l)
			for s := 0; s < tc.steps; s++ {
				for i := 0; i < tc.lines; i++ {
					j.StepLog(op.Step{StepName: fmt.Sprintf("s%d", s)}, 0, tc.line(s, i))
				}
			}
			// The logs never stand in the way of an effect's record.
			if err := j.Record(ctx, "s0-1/post", journal.Entry{Message: strings.Repeat("m", 1500)}); err != nil {
				t.Fatalf("record after the logs: %v", err)
			}
			if err := j.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			tc.check(t, open(t, m, l).Data())
		})
	}
}

func jsonSize(t *testing.T, v any) int {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestBigLogLineDoesNotBlockRecords: with the default bounds, a huge #Log
// line does not take the room of effect records, nor make saves fail.
func TestBigLogLineDoesNotBlockRecords(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{})
	for i := 0; i < 50; i++ {
		j.StepLog(op.Step{StepName: fmt.Sprintf("s%d", i)}, 0, strings.Repeat("x", 100<<10))
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatalf("flush with 50 × 100 KiB of log lines: %v", err)
	}
	if err := j.Record(ctx, "s0-1/post", journal.Entry{Message: "sent"}); err != nil {
		t.Fatalf("record after big log lines: %v", err)
	}
	d, err := m.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := jsonSize(t, d.Logs); n > journal.DefaultMaxTotalBytes/4 {
		t.Errorf("logs take %d bytes of the run's ConfigMap", n)
	}
}
