package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/cli"
)

// liveOutput is a standard output a test reads while the command writes.
type liveOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *liveOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *liveOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// running is a stepflow command running in the background.
type running struct {
	t        *testing.T
	out, err liveOutput
	done     chan int
	code     int
}

// start runs stepflow against the cluster in the background; terminal is
// what it is told of its standard output.
func (c *cluster) start(terminal bool, args ...string) *running {
	c.t.Helper()
	r := &running{t: c.t, done: make(chan int, 1)}
	args = append([]string{"--kubeconfig", c.kubeconfig, "-n", c.ns}, args...)
	go func() {
		r.done <- cli.Main(cli.Deps{Stdout: &r.out, Stderr: &r.err, Ops: buildOps, Terminal: func() bool { return terminal }}, args)
	}()
	return r
}

// waitFor waits until the command's standard output matches re, failing
// the test if the command ends first or a minute passes.
func (r *running) waitFor(re string) {
	r.t.Helper()
	want := regexp.MustCompile(re)
	deadline := time.After(time.Minute)
	for !want.MatchString(r.out.String()) {
		select {
		case code := <-r.done:
			r.t.Fatalf("the command ended (exit %d) before printing %q\nstdout:\n%s\nstderr:\n%s", code, re, r.out.String(), r.err.String())
		case <-deadline:
			r.t.Fatalf("no output matching %q in a minute\nstdout:\n%s", re, r.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wait waits for the command to end and returns its exit code.
func (r *running) wait() int {
	r.t.Helper()
	select {
	case r.code = <-r.done:
		return r.code
	case <-time.After(time.Minute):
		r.t.Fatalf("the command did not end in a minute\nstdout:\n%s", r.out.String())
	}
	return 0
}

// setStatus writes the run's status as the controller would.
func (c *cluster) setStatus(name string, st v1alpha1.WorkflowRunStatus) {
	c.t.Helper()
	run := c.get(name)
	run.Status = st
	if err := env.Client.Status().Update(context.Background(), run); err != nil {
		c.t.Fatal(err)
	}
}

// groupRun creates run "r": step build, group deploy of canary and full,
// then notify.
func (c *cluster) groupRun() {
	c.t.Helper()
	base := func(name, typ string) v1alpha1.WorkflowStepBase {
		return v1alpha1.WorkflowStepBase{Name: name, Type: typ}
	}
	run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: c.ns},
		Spec: v1alpha1.WorkflowRunSpec{WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: []v1alpha1.WorkflowStep{
			{WorkflowStepBase: base("build", "say")},
			{WorkflowStepBase: base("deploy", "step-group"), SubSteps: []v1alpha1.WorkflowStepBase{base("canary", "say"), base("full", "say")}},
			{WorkflowStepBase: base("notify", "say")},
		}}}}
	if err := env.Client.Create(context.Background(), run); err != nil {
		c.t.Fatal(err)
	}
}

// at is a time of the statuses the tests write: t0 plus s seconds.
var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func at(s int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(s) * time.Second)) }

// stepAt is a step status that started at second from and, when to > 0,
// ended at second to.
func stepAt(name string, phase v1alpha1.WorkflowStepPhase, from, to int, msg string) v1alpha1.StepStatus {
	st := v1alpha1.StepStatus{ID: name + "-1", Name: name, Phase: phase, Attempt: 1, FirstExecuteTime: at(from), Message: msg}
	if to > 0 {
		st.LastExecuteTime = at(to)
	}
	return st
}

// The statuses the controller would write for the group run, in order.
func groupStatuses() (building, deploying, failed, succeeded v1alpha1.WorkflowRunStatus) {
	build := v1alpha1.WorkflowStepStatus{StepStatus: stepAt("build", v1alpha1.WorkflowStepPhaseSucceeded, 0, 3, "")}
	building = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: at(0), Steps: []v1alpha1.WorkflowStepStatus{
		{StepStatus: stepAt("build", v1alpha1.WorkflowStepPhaseRunning, 0, 0, "")}}}
	deploying = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: at(0), Steps: []v1alpha1.WorkflowStepStatus{
		build,
		{StepStatus: stepAt("deploy", v1alpha1.WorkflowStepPhaseRunning, 3, 0, ""), SubStepsStatus: []v1alpha1.StepStatus{
			stepAt("canary", v1alpha1.WorkflowStepPhaseSucceeded, 3, 5, ""),
			stepAt("full", v1alpha1.WorkflowStepPhaseRunning, 5, 0, "waiting for 3 replicas"),
		}}}}
	failedFull := stepAt("full", v1alpha1.WorkflowStepPhaseFailed, 5, 65, "2 of 3 replicas ready")
	failedFull.Reason = "Timeout"
	failed = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, StartTime: at(0), EndTime: at(65),
		Message: "step deploy failed", Progress: "2/3", Steps: []v1alpha1.WorkflowStepStatus{
			build,
			{StepStatus: stepAt("deploy", v1alpha1.WorkflowStepPhaseFailed, 3, 65, ""), SubStepsStatus: []v1alpha1.StepStatus{
				stepAt("canary", v1alpha1.WorkflowStepPhaseSucceeded, 3, 5, ""), failedFull}},
			{StepStatus: stepAt("notify", v1alpha1.WorkflowStepPhaseSkipped, 65, 65, "")},
		}}
	succeeded = v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, Finished: true, StartTime: at(0), EndTime: at(9),
		Progress: "3/3", Steps: []v1alpha1.WorkflowStepStatus{
			build,
			{StepStatus: stepAt("deploy", v1alpha1.WorkflowStepPhaseSucceeded, 3, 8, ""), SubStepsStatus: []v1alpha1.StepStatus{
				stepAt("canary", v1alpha1.WorkflowStepPhaseSucceeded, 3, 5, ""), stepAt("full", v1alpha1.WorkflowStepPhaseSucceeded, 5, 8, "")}},
			{StepStatus: stepAt("notify", v1alpha1.WorkflowStepPhaseSucceeded, 8, 9, "")},
		}}
	return
}

// Piped, watch prints a line per step phase change, sub-steps included,
// and exits as the run ends: 0 when it succeeded, else 1 with its message.
func TestCLIWatchPiped(t *testing.T) {
	building, deploying, failed, succeeded := groupStatuses()
	terminated := succeeded
	terminated.Phase, terminated.Terminated = v1alpha1.WorkflowRunTerminated, true
	for _, tc := range []struct {
		name  string
		end   v1alpha1.WorkflowRunStatus
		code  int
		lines []string
		err   string
	}{{
		name: "succeeded", end: succeeded,
		lines: []string{"build running", "build succeeded", "deploy running", "canary succeeded",
			"full running waiting for 3 replicas", "deploy succeeded", "full succeeded", "notify succeeded", "workflowrun NS/r succeeded"},
	}, {
		name: "failed", end: failed, code: 1, err: "error: workflowrun NS/r failed: step deploy failed\n",
		lines: []string{"build running", "build succeeded", "deploy running", "canary succeeded",
			"full running waiting for 3 replicas", "deploy failed", "full failed Timeout: 2 of 3 replicas ready", "notify skipped"},
	}, {
		name: "terminated", end: terminated, code: 1, err: "error: workflowrun NS/r was terminated\n",
		lines: []string{"build running", "build succeeded", "deploy running", "canary succeeded",
			"full running waiting for 3 replicas", "deploy succeeded", "full succeeded", "notify succeeded"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			c.groupRun()
			r := c.start(false, "watch", "r")
			c.setStatus("r", building)
			r.waitFor(`build +running`)
			c.setStatus("r", deploying)
			r.waitFor(`full +running`)
			c.setStatus("r", tc.end)
			code := r.wait()
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(r.out.String(), "\n"), "\n") {
				// HH:MM:SS, then the columns.
				got = append(got, strings.Join(strings.Fields(regexp.MustCompile(`^\d\d:\d\d:\d\d `).ReplaceAllString(l, "")), " "))
			}
			want := strings.ReplaceAll(strings.Join(tc.lines, "\n"), "NS", c.ns)
			if diff := cmp.Diff(strings.Split(want, "\n"), got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if wantErr := strings.ReplaceAll(tc.err, "NS", c.ns); code != tc.code || r.err.String() != wantErr {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr %q", code, r.err.String(), tc.code, wantErr)
			}
		})
	}
}

// On a terminal, watch draws the run's tree and redraws it in place: up
// over the last frame, each line cleared, and what is left below cleared.
func TestCLIWatchTerminal(t *testing.T) {
	_, deploying, failed, _ := groupStatuses()
	c := newCluster(t)
	c.groupRun()
	c.setStatus("r", deploying)
	r := c.start(true, "watch", "r")
	r.waitFor(`full +running`)
	c.setStatus("r", failed)
	if code := r.wait(); code != 1 || r.err.String() != "error: workflowrun "+c.ns+"/r failed: step deploy failed\n" {
		t.Errorf("exit %d, stderr %q; want 1 and the run's message", code, r.err.String())
	}
	out := r.out.String()
	// Every frame is 7 lines: the run, the header and 5 steps; every
	// frame but the first starts by moving up over the last.
	frames := strings.Split(out, "\x1b[7A")
	if len(frames) < 2 || !strings.HasPrefix(frames[0], "\r\x1b[2Kworkflowrun ") {
		t.Fatalf("want 2 frames or more, the first not moving up; got %q", out)
	}
	for i, f := range frames {
		if !strings.HasSuffix(f, "\n\x1b[J") || strings.Count(f, "\r\x1b[2K") != 7 || strings.Count(f, "\n") != 7 {
			t.Errorf("frame %d: want 7 cleared lines, then the rest of the screen cleared; got %q", i, f)
		}
	}
	// The first frame: the run as it was, the durations of running steps
	// to now (D here), columns as single spaces.
	norm := func(frame string) []string {
		var out []string
		for _, l := range strings.Split(strings.NewReplacer("\r\x1b[2K", "", "\x1b[J", "").Replace(frame), "\n") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
		return out
	}
	first := norm(regexp.MustCompile(`\b\d+(s|m\d*s?|h\d*m?|d\d*h?|y\d*d?)\b`).ReplaceAllString(frames[0], "D"))
	wantFirst := "workflowrun " + c.ns + `/r executing 1/3 steps D
STEP PHASE DURATION MESSAGE
build succeeded D -
deploy running D -
├─ canary succeeded D -
└─ full running D waiting for 3 replicas
notify pending - -
`
	if diff := cmp.Diff(strings.Split(wantFirst, "\n"), first); diff != "" {
		t.Errorf("first frame, durations as D (-want +got):\n%s", diff)
	}
	last := strings.NewReplacer("\r\x1b[2K", "", "\x1b[J", "").Replace(frames[len(frames)-1])
	wantLast := "workflowrun " + c.ns + `/r  failed  3/3 steps  65s  step deploy failed
STEP        PHASE       DURATION   MESSAGE
build       succeeded   3s         -
deploy      failed      62s        -
├─ canary   succeeded   2s         -
└─ full     failed      60s        Timeout: 2 of 3 replicas ready
notify      skipped     0s         -
`
	if diff := cmp.Diff(strings.Split(wantLast, "\n"), strings.Split(last, "\n")); diff != "" {
		t.Errorf("last frame (-want +got):\n%s", diff)
	}
}
