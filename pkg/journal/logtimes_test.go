package journal_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// ticking is a clock that moves one second each time it is read.
func ticking(start time.Time) func() time.Time {
	now := start
	return func() time.Time {
		now = now.Add(time.Second)
		return now
	}
}

// logTimes lists the times of a step's lines as seconds after t0, -1 for
// a line whose time is unknown.
func logTimes(d journal.Data, step string, t0 time.Time) []int {
	var out []int
	for i := range d.Logs[step] {
		at, ok := d.LogTime(step, i)
		if !ok {
			out = append(out, -1)
			continue
		}
		out = append(out, int(at.Sub(t0)/time.Second))
	}
	return out
}

// TestLogTimes: each #Log line is kept with the time the journal's clock
// gave when it was written; a dropped line's time goes with it; a journal
// written before times were kept still reads, its old lines without time.
func TestLogTimes(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		old       journal.Data
		limits    journal.Limits
		lines     []string
		wantLines []string
		wantTimes []int
	}{{
		name:      "each line keeps its time; a repeated line is not stamped again",
		lines:     []string{"a", "b", "b", "c"},
		wantLines: []string{"a", "b", "c"},
		wantTimes: []int{1, 2, 3},
	}, {
		name:   "dropped lines take their times; the marker has the newest dropped line's",
		limits: journal.Limits{MaxStepLogBytes: 100},
		lines:  []string{"line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8"},
		// With their times, the marker and one line fit in 100 bytes.
		wantLines: []string{"… 7 earlier lines dropped (log bound)", "line 8"},
		wantTimes: []int{7, 8},
	}, {
		name:      "an old journal's lines have no time, new lines do",
		old:       journal.Data{Logs: map[string][]string{"s": {"old 1", "old 2"}}},
		lines:     []string{"new 1"},
		wantLines: []string{"old 1", "old 2", "new 1"},
		wantTimes: []int{-1, -1, 1},
	}, {
		name:      "an old journal that writes nothing reads without times",
		old:       journal.Data{Logs: map[string][]string{"s": {"old 1"}}},
		wantLines: []string{"old 1"},
		wantTimes: []int{-1},
	}, {
		name:      "an old journal's lines drop with a new journal's bounds",
		old:       journal.Data{Logs: map[string][]string{"s": {"old 1", "old 2", "old 3", "old 4", "old 5"}}},
		limits:    journal.Limits{MaxStepLogBytes: 100},
		lines:     []string{"new 1", "new 2"},
		wantLines: []string{"… 5 earlier lines dropped (log bound)", "new 1", "new 2"},
		wantTimes: []int{-1, 1, 2},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := journal.NewMemory()
			if err := m.Save(ctx, tc.old); err != nil {
				t.Fatal(err)
			}
			j := open(t, m, tc.limits).WithClock(ticking(t0))
			for _, l := range tc.lines {
				j.StepLog(op.Step{StepName: "s"}, 0, l)
			}
			if err := j.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			d, err := m.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantLines, d.Logs["s"]); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTimes, logTimes(d, "s", t0)); diff != "" {
				t.Errorf("times in seconds after t0, -1 unknown (-want +got):\n%s", diff)
			}
			if tc.limits.MaxStepLogBytes > 0 {
				if n := jsonSize(t, d.Logs["s"]) + jsonSize(t, d.LogTimes["s"]); n > tc.limits.MaxStepLogBytes {
					t.Errorf("lines and times take %d bytes, over the step's bound of %d", n, tc.limits.MaxStepLogBytes)
				}
			}
		})
	}
}

// TestLogTimesRunBound: the run's bound counts the times too, and drops
// them with their lines. As for the lines alone, the bound leaves out the
// JSON of the maps themselves (braces, colons, brackets: a few bytes a
// step).
func TestLogTimesRunBound(t *testing.T) {
	ctx := context.Background()
	m := journal.NewMemory()
	j := open(t, m, journal.Limits{MaxRunLogBytes: 2000}).WithClock(ticking(time.Unix(1_800_000_000, 0)))
	for i := 0; i < 200; i++ {
		j.StepLog(op.Step{StepName: fmt.Sprintf("s%d", i%4)}, 0, fmt.Sprintf("line %03d", i))
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := m.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := jsonSize(t, d.Logs) + jsonSize(t, d.LogTimes); n > 2000+4*10 {
		t.Errorf("lines and times take %d bytes, over the run's bound of 2000 and the maps' syntax", n)
	}
	for s := 0; s < 4; s++ {
		name := fmt.Sprintf("s%d", s)
		lines, times := d.Logs[name], d.LogTimes[name]
		if len(times) != len(lines) || !strings.HasPrefix(lines[0], "… ") {
			t.Fatalf("step %s: %d lines %q, %d times", name, len(lines), lines, len(times))
		}
		// Line "line N" was written at tick N+1.
		for i, l := range lines[1:] {
			var n int
			if _, err := fmt.Sscanf(l, "line %d", &n); err != nil {
				t.Fatal(err)
			}
			if want := time.Unix(1_800_000_000+int64(n)+1, 0); !time.UnixMilli(times[i+1]).Equal(want) {
				t.Errorf("step %s: %q at %v, want %v", name, l, time.UnixMilli(times[i+1]), want)
			}
		}
	}
}

// TestLogTimesOnConflict: a writer whose Save conflicts puts its steps'
// lines over the other writer's with their times, and keeps the other's.
func TestLogTimesOnConflict(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	m := journal.NewMemory()
	mine := open(t, m, journal.Limits{}).WithClock(ticking(t0))
	theirs := open(t, m.Writer(), journal.Limits{}).WithClock(ticking(t0.Add(time.Minute)))
	theirs.StepLog(op.Step{StepName: "theirs"}, 0, "first")
	if err := theirs.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mine.StepLog(op.Step{StepName: "mine"}, 0, "second")
	if err := mine.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := m.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int{"mine": logTimes(d, "mine", t0), "theirs": logTimes(d, "theirs", t0)}
	if diff := cmp.Diff(map[string][]int{"mine": {1}, "theirs": {61}}, got); diff != "" {
		t.Errorf("times in seconds after t0 (-want +got):\n%s", diff)
	}
}
