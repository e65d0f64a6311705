package controller_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/runop"
)

// testClock is the controller's injected clock: tests move it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// startClockedController runs the whole controller (Setup) with the
// injected clock and configuration until the test ends; sys is its system
// namespace.
func startClockedController(t *testing.T, clock *testClock, cfg controller.Config, sys string) *controller.Controller {
	t.Helper()
	skip := true
	mgr, err := controller.NewManager(env.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := controller.Setup(mgr, controller.Options{SystemNamespace: sys, Metrics: prometheus.NewRegistry(),
		Sandbox: testSandbox(), HTTP: testHTTP, Now: clock.Now, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// poke changes an annotation of obj, so its watch event reconciles it
// with the clock as the test has set it.
func poke(t *testing.T, obj client.Object, key types.NamespacedName) {
	t.Helper()
	if err := env.Client.Get(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{"test.stepflow.dev/poke":"%d"}}}`, time.Now().UnixNano()))
	if err := env.Client.Patch(context.Background(), obj, patch); err != nil {
		t.Fatal(err)
	}
}

func pokeSchedule(t *testing.T, ns, name string) {
	t.Helper()
	poke(t, &v1alpha1.WorkflowSchedule{}, types.NamespacedName{Namespace: ns, Name: name})
}

func getSchedule(t *testing.T, ns, name string) *v1alpha1.WorkflowSchedule {
	t.Helper()
	var s v1alpha1.WorkflowSchedule
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// runsOf are the names of the runs in ns labelled as the schedule's.
func runsOf(t *testing.T, ns, schedule string) []string {
	t.Helper()
	var list v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{controller.LabelSchedule: schedule}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.Items {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	return names
}

// scheduleEvents are the reasons and messages of the events about a
// schedule.
func scheduleEvents(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	var list corev1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "WorkflowSchedule" && e.InvolvedObject.Name == name {
			got[e.Reason] = e.Message
		}
	}
	return got
}

// scheduleWorkflow creates the Workflow "wf" in ns with one step of type typ.
func scheduleWorkflow(t *testing.T, ns, typ string) {
	t.Helper()
	applyYAML(t, &v1alpha1.Workflow{}, fmt.Sprintf(`
metadata: {name: wf, namespace: %s}
steps:
- {name: only, type: %s}
`, ns, typ))
}

func readyOf(s *v1alpha1.WorkflowSchedule) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
}

// A schedule creates its run at the scheduled minute of its time zone and
// not before; between times it asks to be reconciled again exactly at the
// next one. A schedule or zone that cannot be read is Ready=False.
func TestScheduleRunsOnTimeInItsZone(t *testing.T) {
	ns := namespace(t, "sched-zone")
	stepDef(t, ns, "noop", `parameter: {}`)
	scheduleWorkflow(t, ns, "noop")
	real := time.Now()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	d := real.In(tokyo)
	nine := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, tokyo)
	for !nine.After(real.Add(2 * time.Minute)) {
		nine = nine.AddDate(0, 0, 1)
	}
	clock := &testClock{t: real}
	c := startClockedController(t, clock, controller.Config{}, ns)
	applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: morning, namespace: %s}
spec: {schedule: "0 9 * * *", timeZone: Asia/Tokyo, workflowRef: wf, context: {greeting: ohayo}}
`, ns))
	applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: nowhere, namespace: %s}
spec: {schedule: "0 9 * * *", timeZone: Mars/Olympus, workflowRef: wf}
`, ns))
	eventually(t, 30*time.Second, "the bad zone is Ready=False", func() bool {
		c := readyOf(getSchedule(t, ns, "nowhere"))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == controller.ReasonInvalidSchedule &&
			strings.Contains(c.Message, `timeZone "Mars/Olympus"`)
	})
	eventually(t, 30*time.Second, "morning is Ready", func() bool {
		c := readyOf(getSchedule(t, ns, "morning"))
		return c != nil && c.Status == metav1.ConditionTrue && c.Message == "next run at "+nine.Format(time.RFC3339)
	})

	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "morning"}}
	for _, before := range []time.Duration{30 * time.Minute, time.Second} {
		clock.Set(nine.Add(-before))
		res, err := c.Schedules.Reconcile(context.Background(), req)
		if err != nil || res.RequeueAfter != before {
			t.Fatalf("%s before nine: RequeueAfter %s (%v), want %s", before, res.RequeueAfter, err, before)
		}
	}
	if runs := runsOf(t, ns, "morning"); len(runs) != 0 {
		t.Fatalf("runs before nine in Tokyo: %v", runs)
	}

	clock.Set(nine.Add(250 * time.Millisecond))
	pokeSchedule(t, ns, "morning")
	name := fmt.Sprintf("morning-%d", nine.Unix()/60)
	run := waitRun(t, ns, name, 30*time.Second, finishedRun)
	if run.Status.Phase != v1alpha1.WorkflowRunSucceeded {
		t.Errorf("run %s is %s, want succeeded", name, run.Status.Phase)
	}
	if run.Spec.WorkflowRef != "wf" || run.Spec.Context == nil || !strings.Contains(string(run.Spec.Context.Raw), "ohayo") {
		t.Errorf("run spec = %+v, want workflowRef wf and the schedule's context", run.Spec)
	}
	if got := run.Annotations[controller.AnnotationScheduledAt]; got != nine.UTC().Format(time.RFC3339) {
		t.Errorf("scheduled-at %q, want %s", got, nine.UTC().Format(time.RFC3339))
	}
	if o := metav1.GetControllerOf(run); o == nil || o.Kind != "WorkflowSchedule" || o.Name != "morning" {
		t.Errorf("run controller %+v, want the schedule", o)
	}
	eventually(t, 30*time.Second, "status shows the run's time and success", func() bool {
		s := getSchedule(t, ns, "morning")
		return s.Status.LastScheduleTime != nil && s.Status.LastScheduleTime.Equal(&metav1.Time{Time: nine}) &&
			s.Status.LastSuccessfulTime != nil && len(s.Status.Active) == 0 &&
			readyOf(s).Message == "next run at "+nine.AddDate(0, 0, 1).Format(time.RFC3339)
	})
	res, err := c.Schedules.Reconcile(context.Background(), req)
	if want := 24*time.Hour - 250*time.Millisecond; err != nil || res.RequeueAfter != want {
		t.Errorf("after the run: RequeueAfter %s (%v), want %s", res.RequeueAfter, err, want)
	}
	if runs := runsOf(t, ns, "morning"); len(runs) != 1 {
		t.Errorf("runs %v, want one", runs)
	}
}

// Forbid skips a time while a run is active; Replace terminates the
// active run, through runop as `stepflow terminate` does, and starts the
// new one.
func TestScheduleConcurrencyPolicies(t *testing.T) {
	for _, policy := range []v1alpha1.ConcurrencyPolicy{v1alpha1.ConcurrencyForbid, v1alpha1.ConcurrencyReplace} {
		t.Run(string(policy), func(t *testing.T) {
			ns := namespace(t, "sched-"+strings.ToLower(string(policy)))
			shippedStepDef(t, ns, "suspend")
			scheduleWorkflow(t, ns, "suspend")
			real := time.Now()
			clock := &testClock{t: real}
			startClockedController(t, clock, controller.Config{}, ns)
			applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: every-minute, namespace: %s}
spec: {schedule: "* * * * *", workflowRef: wf, concurrencyPolicy: %s}
`, ns, policy))
			m1 := real.Truncate(time.Minute).Add(2 * time.Minute)
			first := fmt.Sprintf("every-minute-%d", m1.Unix()/60)
			second := fmt.Sprintf("every-minute-%d", m1.Unix()/60+1)
			clock.Set(m1.Add(time.Second))
			pokeSchedule(t, ns, "every-minute")
			waitRun(t, ns, first, 30*time.Second, func(r *v1alpha1.WorkflowRun) bool {
				return r.Status.Phase == v1alpha1.WorkflowRunSuspending
			})
			eventually(t, 30*time.Second, "the first run is active", func() bool {
				a := getSchedule(t, ns, "every-minute").Status.Active
				return len(a) == 1 && a[0].Name == first
			})

			clock.Set(m1.Add(61 * time.Second))
			pokeSchedule(t, ns, "every-minute")
			switch policy {
			case v1alpha1.ConcurrencyForbid:
				eventually(t, 30*time.Second, "a RunAlreadyActive event", func() bool {
					return strings.Contains(scheduleEvents(t, ns, "every-minute")[controller.ReasonRunAlreadyActive], first)
				})
				if runs := runsOf(t, ns, "every-minute"); len(runs) != 1 {
					t.Errorf("runs %v, want only %s", runs, first)
				}
				if r := waitRun(t, ns, first, time.Second, func(*v1alpha1.WorkflowRun) bool { return true }); r.Status.Finished {
					t.Errorf("the active run was stopped: %s", r.Status.Phase)
				}
			case v1alpha1.ConcurrencyReplace:
				// runop records who terminated it just after the status.
				old := waitRun(t, ns, first, 30*time.Second, func(r *v1alpha1.WorkflowRun) bool {
					return r.Status.Finished && r.Annotations[runop.AnnotationOperatedBy] != ""
				})
				if old.Status.Phase != v1alpha1.WorkflowRunTerminated {
					t.Errorf("replaced run is %s, want terminated", old.Status.Phase)
				}
				if by := old.Annotations[runop.AnnotationOperatedBy]; !strings.Contains(by, "workflowschedule every-minute") {
					t.Errorf("operated-by %q, want the schedule", by)
				}
				waitRun(t, ns, second, 30*time.Second, func(r *v1alpha1.WorkflowRun) bool {
					return r.Status.Phase == v1alpha1.WorkflowRunSuspending
				})
				eventually(t, 30*time.Second, "only the new run is active", func() bool {
					a := getSchedule(t, ns, "every-minute").Status.Active
					return len(a) == 1 && a[0].Name == second
				})
			}
		})
	}
}

// Times missed while the controller was down (the clock jumps) are
// handled as CronJob handles them: only the most recent, if within the
// starting deadline; none outside it; over 100 missed, still one run and
// a warning event.
func TestScheduleMissedTimes(t *testing.T) {
	for _, tc := range []struct {
		name, schedule string
		deadline       string
		jump           func(real time.Time) time.Time
		want           func(now time.Time) (time.Time, bool) // the run's time, or none
		event          string
	}{
		{name: "within the deadline", schedule: "*/5 * * * *", deadline: "startingDeadlineSeconds: 600,",
			jump: func(r time.Time) time.Time { return r.Add(time.Hour) },
			want: func(now time.Time) (time.Time, bool) { return now.Truncate(5 * time.Minute), true }},
		{name: "outside the deadline", schedule: "*/5 * * * *", deadline: "startingDeadlineSeconds: 60,",
			jump: func(r time.Time) time.Time { return r.Add(time.Hour).Truncate(5 * time.Minute).Add(2 * time.Minute) }},
		{name: "too many missed", schedule: "* * * * *",
			jump: func(r time.Time) time.Time { return r.Add(3 * time.Hour) },
			want: func(now time.Time) (time.Time, bool) { return now.Truncate(time.Minute), true }, event: controller.ReasonTooManyMissed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t, "sched-missed-"+strings.ReplaceAll(tc.name, " ", "-"))
			stepDef(t, ns, "noop", `parameter: {}`)
			scheduleWorkflow(t, ns, "noop")
			real := time.Now()
			clock := &testClock{t: real}
			startClockedController(t, clock, controller.Config{}, ns)
			applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: missed, namespace: %s}
spec: {schedule: %q, %s workflowRef: wf}
`, ns, tc.schedule, tc.deadline))
			eventually(t, 30*time.Second, "the schedule is Ready", func() bool {
				c := readyOf(getSchedule(t, ns, "missed"))
				return c != nil && c.Status == metav1.ConditionTrue
			})
			now := tc.jump(real)
			clock.Set(now)
			pokeSchedule(t, ns, "missed")
			if tc.want == nil {
				next := now.Truncate(5 * time.Minute).Add(5 * time.Minute)
				eventually(t, 30*time.Second, "the schedule looked at the jumped clock", func() bool {
					return readyOf(getSchedule(t, ns, "missed")).Message == "next run at "+next.Local().Format(time.RFC3339)
				})
				if runs := runsOf(t, ns, "missed"); len(runs) != 0 {
					t.Errorf("runs %v for times missed by more than the deadline", runs)
				}
				if s := getSchedule(t, ns, "missed"); s.Status.LastScheduleTime != nil {
					t.Errorf("lastScheduleTime %s, want none", s.Status.LastScheduleTime)
				}
				return
			}
			at, _ := tc.want(now)
			name := fmt.Sprintf("missed-%d", at.Unix()/60)
			waitRun(t, ns, name, 30*time.Second, finishedRun)
			eventually(t, 30*time.Second, "lastScheduleTime is the run's", func() bool {
				s := getSchedule(t, ns, "missed")
				return s.Status.LastScheduleTime != nil && s.Status.LastScheduleTime.Equal(&metav1.Time{Time: at})
			})
			if runs := runsOf(t, ns, "missed"); len(runs) != 1 {
				t.Errorf("runs %v, want only %s", runs, name)
			}
			if tc.event != "" {
				eventually(t, 30*time.Second, "a "+tc.event+" event", func() bool {
					_, ok := scheduleEvents(t, ns, "missed")[tc.event]
					return ok
				})
			}
		})
	}
}

// A controller that created a run and then lost the status write that
// records it (a crash in between) finds the run by its name when it looks
// again: no second run, and lastScheduleTime is written again.
func TestScheduleLostStatusCreatesNoDuplicate(t *testing.T) {
	ns := namespace(t, "sched-lost")
	shippedStepDef(t, ns, "suspend")
	scheduleWorkflow(t, ns, "suspend")
	real := time.Now()
	clock := &testClock{t: real}
	startClockedController(t, clock, controller.Config{}, ns)
	applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: hourly, namespace: %s}
spec: {schedule: "@hourly", workflowRef: wf}
`, ns))
	at := real.Truncate(time.Hour).Add(time.Hour)
	name := fmt.Sprintf("hourly-%d", at.Unix()/60)
	clock.Set(at.Add(2 * time.Second))
	pokeSchedule(t, ns, "hourly")
	waitRun(t, ns, name, 30*time.Second, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Phase == v1alpha1.WorkflowRunSuspending })
	eventually(t, 30*time.Second, "lastScheduleTime is written", func() bool {
		return getSchedule(t, ns, "hourly").Status.LastScheduleTime != nil
	})

	// The status write is lost: lastScheduleTime and active are gone.
	s := getSchedule(t, ns, "hourly")
	s.Status = v1alpha1.WorkflowScheduleStatus{}
	if err := env.Client.Status().Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "lastScheduleTime is written again", func() bool {
		s := getSchedule(t, ns, "hourly")
		return s.Status.LastScheduleTime != nil && s.Status.LastScheduleTime.Equal(&metav1.Time{Time: at}) &&
			len(s.Status.Active) == 1 && s.Status.Active[0].Name == name
	})
	if runs := runsOf(t, ns, "hourly"); len(runs) != 1 {
		t.Errorf("runs %v, want only %s", runs, name)
	}
	created := 0
	var list corev1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == "hourly" && e.Reason == controller.ReasonRunCreated {
			created += int(e.Count)
		}
	}
	if created != 1 {
		t.Errorf("%d RunCreated events, want 1", created)
	}
}

// A run of the scheduled time's name that the schedule does not own is
// left alone: the time is skipped with a Warning event, not retried.
func TestScheduleRunNameTaken(t *testing.T) {
	ns := namespace(t, "sched-taken")
	stepDef(t, ns, "noop", `parameter: {}`)
	scheduleWorkflow(t, ns, "noop")
	real := time.Now()
	clock := &testClock{t: real}
	startClockedController(t, clock, controller.Config{}, ns)
	applyYAML(t, &v1alpha1.WorkflowSchedule{}, fmt.Sprintf(`
metadata: {name: hourly, namespace: %s}
spec: {schedule: "@hourly", workflowRef: wf}
`, ns))
	at := real.Truncate(time.Hour).Add(time.Hour)
	name := fmt.Sprintf("hourly-%d", at.Unix()/60)
	mine := finishRun(t, ns, name, "", `{workflowRef: wf}`)
	clock.Set(at.Add(time.Second))
	pokeSchedule(t, ns, "hourly")
	eventually(t, 30*time.Second, "a RunNameTaken event", func() bool {
		_, ok := scheduleEvents(t, ns, "hourly")[controller.ReasonRunNameTaken]
		return ok
	})
	eventually(t, 30*time.Second, "the time is skipped", func() bool {
		s := getSchedule(t, ns, "hourly")
		return s.Status.LastScheduleTime != nil && s.Status.LastScheduleTime.Equal(&metav1.Time{Time: at}) && len(s.Status.Active) == 0
	})
	got := waitRun(t, ns, name, time.Second, finishedRun)
	if got.UID != mine.UID || len(got.OwnerReferences) != 0 {
		t.Errorf("the other run was changed: uid %s (was %s), owners %v", got.UID, mine.UID, got.OwnerReferences)
	}
	if _, ok := scheduleEvents(t, ns, "hourly")[controller.ReasonRunCreated]; ok {
		t.Error("a RunCreated event for a run the schedule did not create")
	}
}
