package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// logs -f prints the lines there are, then each new line as the journal
// gets it (as the controller writes it: a Journal on the run's ConfigMap),
// and exits when the run finishes, after the lines of its last tick.
func TestCLILogsFollow(t *testing.T) {
	c := newCluster(t)
	c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("a", "say", v1alpha1.WorkflowStepPhaseRunning, "a-1"),
		step("b", "say", v1alpha1.WorkflowStepPhaseRunning, "b-1"),
	}}, "a:say", "b:say")
	ctx := context.Background()
	j, err := journal.Open(ctx, kubestore.New(env.Client, c.get("r"), nil), journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tick := t0
	j.WithClock(func() time.Time { tick = tick.Add(time.Second); return tick })
	logged := func(lines ...string) {
		t.Helper()
		for _, l := range lines {
			name, line, _ := strings.Cut(l, ":")
			j.StepLog(op.Step{StepName: name}, 0, line)
		}
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	logged("a:a one")
	r := c.start(false, "logs", "r", "-f", "--timestamps")
	r.waitFor(`\[a\] a one\n`)
	logged("b:b one", "a:a two")
	r.waitFor(`\[a\] a two\n`)
	// The last tick: its lines are saved before the status that ends the
	// run.
	logged("a:a three")
	st := c.get("r").Status
	st.Phase, st.Finished = v1alpha1.WorkflowRunSucceeded, true
	c.setStatus("r", st)
	if code := r.wait(); code != 0 || r.err.String() != "" {
		t.Errorf("exit %d, stderr %q; want 0 and nothing", code, r.err.String())
	}
	want := `2026-12-06T10:00:01Z [a] a one
2026-12-06T10:00:03Z [a] a two
2026-12-06T10:00:02Z [b] b one
2026-12-06T10:00:04Z [a] a three
`
	if diff := cmp.Diff(want, r.out.String()); diff != "" {
		t.Errorf("logs -f --timestamps (-want +got):\n%s", diff)
	}
	// A finished run's lines, at once.
	if out := c.ok("logs", "r", "-f", "--step", "a"); out != "a one\na two\na three\n" {
		t.Errorf("logs -f of a finished run: %q", out)
	}
}

// --timestamps prints when each line was written ("-" for a line of a
// journal that kept no times), --since only the newer lines.
func TestCLILogsTimestampsSince(t *testing.T) {
	c := newCluster(t)
	run := c.createRun("r", v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, Steps: []v1alpha1.WorkflowStepStatus{
		step("a", "say", v1alpha1.WorkflowStepPhaseRunning, "a-1"),
		step("old", "say", v1alpha1.WorkflowStepPhaseSucceeded, "old-1"),
	}}, "a:say", "old:say")
	now := time.Now()
	tenAgo, oneAgo := now.Add(-10*time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli()
	stamp := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
	c.saveJournal(run, journal.Data{
		Logs: map[string][]string{"a": {"ten minutes ago", "a minute ago"}, "old": {"untimed"}},
		// A journal of an older controller has no times for step old.
		LogTimes: map[string][]int64{"a": {tenAgo, oneAgo}},
	})
	for _, tc := range []struct {
		args     []string
		out, err string
	}{
		{args: []string{"--timestamps"},
			out: stamp(tenAgo) + " [a] ten minutes ago\n" + stamp(oneAgo) + " [a] a minute ago\n- [old] untimed\n"},
		{args: []string{"--timestamps", "--step", "a"}, out: stamp(tenAgo) + " ten minutes ago\n" + stamp(oneAgo) + " a minute ago\n"},
		{args: []string{"--since", "5m"}, out: "[a] a minute ago\n"},
		{args: []string{"--since", "5m", "--timestamps"}, out: stamp(oneAgo) + " [a] a minute ago\n"},
		{args: []string{"--since", "1h"}, out: "[a] ten minutes ago\n[a] a minute ago\n"},
		{args: []string{"--since", "5m", "--step", "old"},
			err: "No log lines: step old of workflowrun " + c.ns + "/r has written none in the last 5m0s.\n"},
		{args: []string{"--since", "30s"}, err: "No log lines: workflowrun " + c.ns + "/r has written none in the last 30s.\n"},
		{args: []string{}, out: "[a] ten minutes ago\n[a] a minute ago\n[old] untimed\n"},
	} {
		code, out, errs := c.run(append([]string{"logs", "r"}, tc.args...)...)
		if code != 0 || out != tc.out || errs != tc.err {
			t.Errorf("logs r %v: exit %d, stdout %q, stderr %q; want 0, %q, %q", tc.args, code, out, errs, tc.out, tc.err)
		}
	}
	c.fails("-f, --timestamps and --since print text only", "logs", "r", "-o", "json", "--timestamps")
	c.fails("--since -5m0s: want a positive duration", "logs", "r", "--since", "-5m")
}
