package callback

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func step(name, id string, phase v1alpha1.WorkflowStepPhase) v1alpha1.WorkflowStepStatus {
	return v1alpha1.WorkflowStepStatus{StepStatus: v1alpha1.StepStatus{Name: name, ID: id, Phase: phase}}
}

func TestTransitions(t *testing.T) {
	start := metav1.NewTime(time.Unix(100, 0))
	now := time.Unix(200, 0)
	suspended := step("gate", "g1", v1alpha1.WorkflowStepPhaseSuspending)
	suspended.SuspendedBy = "hold"
	suspendedAgain := suspended
	suspendedAgain.SuspendedBy = "second"
	group := step("grp", "p1", v1alpha1.WorkflowStepPhaseRunning)
	group.SubStepsStatus = []v1alpha1.StepStatus{{Name: "sub", ID: "s1", Phase: v1alpha1.WorkflowStepPhaseSucceeded}}
	for _, tc := range []struct {
		name          string
		before, after v1alpha1.WorkflowRunStatus
		want          []string // event + " " + key suffix after the uid
	}{{
		name:   "first tick starts the run and a step",
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning), step("b", "", v1alpha1.WorkflowStepPhasePending)}},
		want:   []string{"runStarted r0", "stepStarted a1"},
		before: v1alpha1.WorkflowRunStatus{},
	}, {
		name:   "a step finishes, the next starts and finishes in the same write",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning), step("b", "", v1alpha1.WorkflowStepPhasePending)}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSucceeded, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseSucceeded), step("b", "b1", v1alpha1.WorkflowStepPhaseSucceeded)}},
		want:   []string{"stepSucceeded a1", "stepStarted b1", "stepSucceeded b1", "runSucceeded r0"},
	}, {
		name:   "nothing moved",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning)}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Message: "x", Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning)}},
	}, {
		name:   "a retry is a new attempt, which starts",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning)}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a2", v1alpha1.WorkflowStepPhaseRunning)}},
		want:   []string{"stepStarted a2"},
	}, {
		name:   "a step fails the run",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning)}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, Finished: true, Message: "boom", StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseFailed), step("b", "", v1alpha1.WorkflowStepPhaseSkipped)}},
		want:   []string{"stepFailed a1", "stepSkipped b@r0", "runFailed r0"},
	}, {
		name:   "a step suspends the run, twice in one attempt",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{step("gate", "g1", v1alpha1.WorkflowStepPhaseRunning)}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{suspended}},
		want:   []string{"stepSuspended g1/hold", "runSuspended t200000000000"},
	}, {
		name:   "resumed, then held by the next #Suspend",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{suspended}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{suspendedAgain}},
		want:   []string{"runResumed t200000000000", "stepSuspended g1/second"},
	}, {
		name:   "suspended from outside since the callback last heard",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{}},
		want:   []string{"runSuspended t200000000000"},
	}, {
		name:   "resumed from outside, then held again by the next step in the same write",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, StartTime: start, Callback: &v1alpha1.CallbackStatus{Suspended: true}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{Suspended: true}},
		want:   []string{"runResumed t200000000000", "runSuspended t200000000000"},
	}, {
		name:   "heard suspended and still suspended",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{Suspended: true}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{Suspended: true}},
	}, {
		name:   "terminated while suspended is no resume",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunSuspending, Suspend: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{Suspended: true}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunTerminated, Terminated: true, Finished: true, StartTime: start, Callback: &v1alpha1.CallbackStatus{Suspended: true}},
		want:   []string{"runTerminated r0"},
	}, {
		name:   "sub-steps are named group/sub",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, Steps: []v1alpha1.WorkflowStepStatus{group}},
		want:   []string{"stepStarted p1", "stepStarted s1", "stepSucceeded s1"},
	}, {
		name:   "a failure that rolls back in the same write is a failure too",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRollingBack, Message: "boom", StartTime: start},
		want:   []string{"runFailed r0", "runRollingBack r0"},
	}, {
		name:   "a rollback that fails",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRollingBack, StartTime: start},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunRollbackFailed, RollbackError: "undo failed", StartTime: start},
		want:   []string{"runRollbackFailed r0"},
	}, {
		name:   "a restarted run starts again, with new keys",
		before: v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunFailed, StartTime: start, Finished: true, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseFailed)}},
		after:  v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: start, RestartCount: 1, Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1r", v1alpha1.WorkflowStepPhaseRunning)}},
		want:   []string{"runStarted r1", "stepStarted a1r"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tr := range Transitions("u", &tc.before, &tc.after, now) {
				if !strings.HasPrefix(tr.Key, "u/"+string(tr.Event)+"/") {
					t.Errorf("key %q does not start with the uid and the event", tr.Key)
				}
				got = append(got, string(tr.Event)+" "+strings.TrimPrefix(tr.Key, "u/"+string(tr.Event)+"/"))
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("transitions (-want +got):\n%s", d)
			}
		})
	}
}

func TestTransitionCarriesErrors(t *testing.T) {
	long := strings.Repeat("é", MaxText)
	before := v1alpha1.WorkflowRunStatus{Phase: v1alpha1.WorkflowRunExecuting, StartTime: metav1.NewTime(time.Unix(1, 0)),
		Steps: []v1alpha1.WorkflowStepStatus{step("a", "a1", v1alpha1.WorkflowStepPhaseRunning)}}
	after := *before.DeepCopy()
	after.Phase, after.Message, after.RollbackError = v1alpha1.WorkflowRunFailed, long, "rb"
	after.Steps[0].Phase, after.Steps[0].Message, after.Steps[0].Type = v1alpha1.WorkflowStepPhaseFailed, "step broke", "apply"
	ts := Transitions("u", &before, &after, time.Unix(5, 0))
	if len(ts) != 2 {
		t.Fatalf("got %d transitions, want stepFailed and runFailed", len(ts))
	}
	if s := ts[0].Step; s == nil || s.Message != "step broke" || s.Type != "apply" || s.Name != "a" || ts[0].RunError != "" {
		t.Errorf("stepFailed: %+v step %+v", ts[0], s)
	}
	if len(ts[1].RunError) > MaxText || !strings.HasSuffix(ts[1].RunError, "…") || !strings.HasPrefix(ts[1].RunError, "é") {
		t.Errorf("runError not truncated whole characters to %d bytes: %d bytes", MaxText, len(ts[1].RunError))
	}
	if ts[1].RollbackError != "rb" || ts[1].Phase != v1alpha1.WorkflowRunFailed || !ts[1].Time.Equal(ptr(metav1.NewTime(time.Unix(5, 0)))) {
		t.Errorf("runFailed: %+v", ts[1])
	}
}

func ptr[T any](v T) *T { return &v }

func TestRecord(t *testing.T) {
	tr := func(ev v1alpha1.CallbackEvent, k string) v1alpha1.CallbackTransition {
		return v1alpha1.CallbackTransition{Key: k, Event: ev}
	}
	var st v1alpha1.WorkflowRunStatus
	if Record(&st, []v1alpha1.CallbackTransition{tr(v1alpha1.CallbackStepStarted, "1")}, []v1alpha1.CallbackEvent{v1alpha1.CallbackRunFailed}, 3) {
		t.Fatal("recorded an event the callback does not ask for")
	}
	if st.Callback != nil {
		t.Fatalf("status.callback set for nothing: %+v", st.Callback)
	}
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		Record(&st, []v1alpha1.CallbackTransition{tr(v1alpha1.CallbackRunFailed, k), tr(v1alpha1.CallbackStepStarted, k+"x")}, []v1alpha1.CallbackEvent{v1alpha1.CallbackRunFailed}, 3)
		if want := int32(min(i+1, 3)); st.Callback.Pending != want {
			t.Fatalf("pending %d, want %d", st.Callback.Pending, want)
		}
	}
	var keys []string
	for _, o := range st.Callback.Outbox {
		keys = append(keys, o.Key)
	}
	if d := cmp.Diff([]string{"c", "d", "e"}, keys); d != "" || st.Callback.Dropped != 2 {
		t.Errorf("outbox (-want +got):\n%s\ndropped %d, want 2", d, st.Callback.Dropped)
	}
}

func TestPhase(t *testing.T) {
	for p, want := range map[v1alpha1.WorkflowRunPhase]string{
		v1alpha1.WorkflowRunFailed: "Failed", v1alpha1.WorkflowRunRollingBack: "RollingBack", "": "",
	} {
		if got := Phase(p); got != want {
			t.Errorf("Phase(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestNoteSuspend(t *testing.T) {
	var st v1alpha1.WorkflowRunStatus
	NoteSuspend(&st)
	if st.Callback != nil {
		t.Fatalf("a run never suspended got status.callback %+v", st.Callback)
	}
	st.Suspend = true
	NoteSuspend(&st)
	if st.Callback == nil || !st.Callback.Suspended {
		t.Fatalf("suspended not noted: %+v", st.Callback)
	}
	st.Suspend = false
	NoteSuspend(&st)
	if st.Callback.Suspended {
		t.Fatal("resume not noted")
	}
}
