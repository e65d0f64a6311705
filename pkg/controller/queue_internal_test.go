package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// qrun is a run for the admission structure: created at second sec,
// in queue q; rv orders its copies.
func qrun(name, q string, sec int, rv int) *v1alpha1.WorkflowRun {
	r := &v1alpha1.WorkflowRun{}
	r.Namespace, r.Name, r.UID = "ns", name, types.UID("uid-"+name)
	r.CreationTimestamp = metav1.NewTime(time.Unix(int64(1000+sec), 0))
	r.ResourceVersion = fmt.Sprint(rv)
	r.Spec.Queue = q
	return r
}

// admitLog records the runs an admission wakes, in order.
type admitLog struct{ woken []string }

func (l *admitLog) wake(k types.NamespacedName) { l.woken = append(l.woken, k.Name) }

// admittedNames are the runs holding a slot, in name order.
func (a *admission) admittedNames() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.runs {
		if e.state == slotRunning {
			out = append(out, e.key.Name)
		}
	}
	return strings.Join(sortedCopy(out), ",")
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// finish marks a run finished, as its last status write does.
func finish(r *v1alpha1.WorkflowRun) *v1alpha1.WorkflowRun {
	c := r.DeepCopy()
	c.Status.StartTime = metav1.NewTime(time.Unix(5000, 0))
	c.Status.Finished = true
	rv := 0
	fmt.Sscan(c.ResourceVersion, &rv)
	c.ResourceVersion = fmt.Sprint(rv + 100)
	return c
}

// TestAdmissionOrder: with one slot, the order runs are admitted in as
// slots free one at a time: FIFO by creation time whatever the queue;
// FAIR in turn across queues, so queue b's one run goes second although
// queue a's five are older.
func TestAdmissionOrder(t *testing.T) {
	runs := []*v1alpha1.WorkflowRun{
		qrun("a1", "a", 1, 1), qrun("a2", "a", 2, 2), qrun("a3", "a", 3, 3),
		qrun("a4", "a", 4, 4), qrun("a5", "a", 5, 5), qrun("b1", "b", 6, 6),
	}
	for _, tc := range []struct {
		strategy QueueStrategy
		want     []string
	}{
		{QueueFIFO, []string{"a1", "a2", "a3", "a4", "a5", "b1"}},
		{"", []string{"a1", "a2", "a3", "a4", "a5", "b1"}},
		{QueueFAIR, []string{"a1", "b1", "a2", "a3", "a4", "a5"}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			a := newAdmission(QueueConfig{Strategy: tc.strategy, MaxRunning: 1}, nil, nil)
			log := &admitLog{}
			a.bind(log.wake)
			for _, r := range runs {
				a.observe(r, r.Spec.Queue)
			}
			a.markSynced()
			byName := map[string]*v1alpha1.WorkflowRun{}
			for _, r := range runs {
				byName[r.Name] = r
			}
			var order []string
			for range runs {
				held := a.admittedNames()
				if strings.Contains(held, ",") || held == "" {
					t.Fatalf("with maxRunning 1, held %q", held)
				}
				// The admitted run was woken (besides waiting runs whose
				// shown position is due for a refresh).
				if !slices.Contains(log.woken, held) {
					t.Fatalf("%s admitted, not woken (woken: %v)", held, log.woken)
				}
				log.woken = nil
				order = append(order, held)
				a.observe(finish(byName[held]), byName[held].Spec.Queue)
			}
			if d := cmp.Diff(tc.want, order); d != "" {
				t.Fatalf("admission order (-want +got):\n%s", d)
			}
		})
	}
}

// TestAdmissionCaps: the total cap and the per-queue caps (default and
// override) hold together; suspended runs free their slot unless
// SuspendedHoldSlots, and a resumed run waits for one again.
func TestAdmissionCaps(t *testing.T) {
	cfg := QueueConfig{MaxRunning: 3, MaxRunningPerQueue: 2, Queues: []QueueLimit{{Name: "one", MaxRunning: 1}}}
	a := newAdmission(cfg, nil, nil)
	a.markSynced()
	var runs []*v1alpha1.WorkflowRun
	for i, q := range []string{"one", "one", "two", "two", "two", "three"} {
		r := qrun(fmt.Sprintf("%s-%d", q, i), q, i, i+1)
		runs = append(runs, r)
		a.observe(r, q)
	}
	if got, want := a.admittedNames(), "one-0,two-2,two-3"; got != want {
		t.Fatalf("admitted %s, want %s (total 3, one: 1, others 2)", got, want)
	}
	// two-2 suspends: its slot goes to two-4, not to one-1 (queue one is
	// full) nor to three-5 (younger).
	susp := runs[2].DeepCopy()
	susp.Status.StartTime, susp.Status.Suspend, susp.ResourceVersion = metav1.NewTime(time.Unix(5000, 0)), true, "50"
	a.observe(susp, "two")
	if got, want := a.admittedNames(), "one-0,two-3,two-4"; got != want {
		t.Fatalf("after two-2 suspended: admitted %s, want %s", got, want)
	}
	// Resumed: it waits; it is the oldest of two, so it goes first when
	// a slot of two frees.
	res := susp.DeepCopy()
	res.Status.Suspend, res.ResourceVersion = false, "51"
	a.observe(res, "two")
	if ok, q, pos, _ := a.gate(types.NamespacedName{Namespace: "ns", Name: "two-2"}); ok || q != "two" || pos != 1 {
		t.Fatalf("resumed two-2 over the cap: gate = %v %s %d, want waiting in two at 1", ok, q, pos)
	}
	a.observe(finish(runs[3]), "two")
	if got, want := a.admittedNames(), "one-0,two-2,two-4"; got != want {
		t.Fatalf("after two-3 finished: admitted %s, want %s", got, want)
	}
	// An older copy (a stale event) changes nothing.
	a.observe(runs[3], "two")
	if got, want := a.admittedNames(), "one-0,two-2,two-4"; got != want {
		t.Fatalf("after a stale copy of two-3: admitted %s, want %s", got, want)
	}

	hold := newAdmission(QueueConfig{MaxRunning: 1, SuspendedHoldSlots: true}, nil, nil)
	hold.markSynced()
	x, y := qrun("x", "", 1, 1), qrun("y", "", 2, 2)
	hold.observe(x, DefaultQueue)
	hold.observe(y, DefaultQueue)
	xs := x.DeepCopy()
	xs.Status.StartTime, xs.Status.Suspend, xs.ResourceVersion = metav1.NewTime(time.Unix(5000, 0)), true, "9"
	hold.observe(xs, DefaultQueue)
	if got := hold.admittedNames(); got != "x" {
		t.Fatalf("suspendedHoldSlots: admitted %s, want x (suspended, holding)", got)
	}
	hold.forget(types.NamespacedName{Namespace: "ns", Name: "x"})
	if got := hold.admittedNames(); got != "y" {
		t.Fatalf("x deleted: admitted %s, want y", got)
	}
}

// TestAdmissionTerminated: a waiting run that is terminated leaves its
// queue and may tick (to end) without a slot; a running run that is
// terminated keeps its slot until it finishes (it may roll back first).
func TestAdmissionTerminated(t *testing.T) {
	a := newAdmission(QueueConfig{MaxRunning: 1}, nil, nil)
	a.markSynced()
	x, y, z := qrun("x", "", 1, 1), qrun("y", "", 2, 2), qrun("z", "", 3, 3)
	for _, r := range []*v1alpha1.WorkflowRun{x, y, z} {
		a.observe(r, DefaultQueue)
	}
	yt := y.DeepCopy()
	yt.Status.Terminated, yt.ResourceVersion = true, "20"
	a.observe(yt, DefaultQueue)
	if ok, _, _, _ := a.gate(types.NamespacedName{Namespace: "ns", Name: "y"}); !ok {
		t.Fatal("terminated waiting run y may not tick")
	}
	if ok, _, pos, _ := a.gate(types.NamespacedName{Namespace: "ns", Name: "z"}); ok || pos != 1 {
		t.Fatalf("z: gate %v at %d, want waiting at 1 (y left the queue)", ok, pos)
	}
	xt := x.DeepCopy()
	xt.Status.StartTime, xt.Status.Terminated, xt.ResourceVersion = metav1.NewTime(time.Unix(5000, 0)), true, "21"
	a.observe(xt, DefaultQueue)
	if got := a.admittedNames(); got != "x" {
		t.Fatalf("x terminated, rolling back: admitted %s, want x still", got)
	}
	a.observe(finish(xt), DefaultQueue)
	if got := a.admittedNames(); got != "z" {
		t.Fatalf("x finished: admitted %s, want z", got)
	}
}

// TestAdmissionRefreshesPositions: when the runs ahead of waiting runs
// leave (admitted, or deleted while waiting), the waiting runs whose
// shown position is due for a rewrite are woken, and only those.
func TestAdmissionRefreshesPositions(t *testing.T) {
	a := newAdmission(QueueConfig{MaxRunning: 1}, nil, nil)
	log := &admitLog{}
	a.markSynced()
	var runs []*v1alpha1.WorkflowRun
	for i := range 8 {
		r := qrun(fmt.Sprintf("r%d", i), "", i, i+1)
		runs = append(runs, r)
		a.observe(r, DefaultQueue)
		if i > 0 {
			// Its status shows its place: r1 at 1, ... r7 at 7.
			shown := r.DeepCopy()
			shown.Status.Queue = &v1alpha1.QueueStatus{Name: DefaultQueue, Position: int32(i)}
			shown.ResourceVersion = fmt.Sprint(100 + i)
			a.observe(shown, DefaultQueue)
		}
	}
	a.bind(log.wake)
	// r1..r3 deleted while waiting, one by one: r4..r7 end at 1..4. Those
	// shown at 4, 5 and 6 (now 1, 2, 3) are within the exact head; 7 (now
	// 4) has not halved. r2 and r3 were woken before they went.
	for _, name := range []string{"r1", "r2", "r3"} {
		a.forget(types.NamespacedName{Namespace: "ns", Name: name})
	}
	woken := slices.Compact(sortedCopy(log.woken))
	if d := cmp.Diff([]string{"r2", "r3", "r4", "r5", "r6"}, woken); d != "" {
		t.Fatalf("woken after r1-r3 were deleted (-want +got):\n%s", d)
	}
}

// TestAdmissionWakesOthers: a run admitted on its own reconcile's copy is
// not woken for a second reconcile (that one ticks it); a run admitted on
// an informer event is.
func TestAdmissionWakesOthers(t *testing.T) {
	a := newAdmission(QueueConfig{MaxRunning: 1}, nil, nil)
	log := &admitLog{}
	a.bind(log.wake)
	a.markSynced()
	x, y := qrun("x", "", 1, 1), qrun("y", "", 2, 2)
	names := 0
	queue := func() string { names++; return DefaultQueue }
	a.see(x, queue, true)
	a.see(y, queue, true)
	if len(log.woken) != 0 || a.admittedNames() != "x" {
		t.Fatalf("admitted %s, woke %v; want x admitted on its own reconcile, none woken", a.admittedNames(), log.woken)
	}
	// A run's queue name (a read of its Workflow) is worked out once.
	a.see(x, queue, true)
	a.see(y, queue, false)
	if names != 2 {
		t.Fatalf("queue names worked out %d times for 2 runs seen twice each", names)
	}
	a.observe(finish(x), DefaultQueue)
	if d := cmp.Diff([]string{"y"}, log.woken); d != "" {
		t.Fatalf("woken when x finished (-want +got):\n%s", d)
	}
}

// TestAdmissionRebuild: before the informer has delivered every run,
// nothing is admitted; runs that had started count against the caps
// (even above them), so after a restart no new run starts until enough
// finish.
func TestAdmissionRebuild(t *testing.T) {
	a := newAdmission(QueueConfig{MaxRunning: 2}, nil, nil)
	log := &admitLog{}
	a.bind(log.wake)
	var started []*v1alpha1.WorkflowRun
	for i := range 3 {
		r := qrun(fmt.Sprintf("s%d", i), "", i, i+1)
		r.Status.StartTime = metav1.NewTime(time.Unix(5000, 0))
		started = append(started, r)
	}
	w := qrun("w", "", 10, 10)
	a.observe(w, DefaultQueue) // the waiting run comes first
	if len(log.woken) != 0 {
		t.Fatalf("admitted %v before the informer synced", log.woken)
	}
	for _, r := range started {
		a.observe(r, DefaultQueue)
	}
	a.markSynced()
	if len(log.woken) != 0 {
		t.Fatalf("admitted %v with 3 started runs and maxRunning 2", log.woken)
	}
	a.observe(finish(started[0]), DefaultQueue)
	if len(log.woken) != 0 {
		t.Fatalf("admitted %v with 2 started runs and maxRunning 2", log.woken)
	}
	a.observe(finish(started[1]), DefaultQueue)
	if d := cmp.Diff([]string{"w"}, log.woken); d != "" {
		t.Fatalf("woken (-want +got):\n%s", d)
	}
}

// TestRefreshDue: a waiting run's shown position is rewritten when it is
// within the first exactPositions, when it halved, or when it grew.
func TestRefreshDue(t *testing.T) {
	for _, tc := range []struct {
		pos, shown int32
		want       bool
	}{
		{1, 0, true}, {500, 0, true}, {3, 3, false}, {3, 4, true}, {1, 2, true},
		{4, 5, false}, {11, 12, false}, {60, 100, false}, {50, 100, true}, {101, 100, true},
	} {
		if got := refreshDue(tc.pos, tc.shown); got != tc.want {
			t.Errorf("refreshDue(pos %d, shown %d) = %v, want %v", tc.pos, tc.shown, got, tc.want)
		}
	}
	// Writes for one run waiting behind 1000 as the queue drains one by one.
	shown, writes := int32(0), 0
	for pos := int32(1000); pos >= 1; pos-- {
		if refreshDue(pos, shown) {
			shown, writes = pos, writes+1
		}
	}
	if writes > exactPositions+12 {
		t.Fatalf("a run waiting behind 1000 had its position written %d times", writes)
	}
}

// TestQueueConfigValidate names what is wrong.
func TestQueueConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg     QueueConfig
		want    string
		enabled bool
	}{
		{QueueConfig{}, "", false},
		{QueueConfig{Strategy: QueueFAIR, SuspendedHoldSlots: true}, "", false},
		{QueueConfig{Queues: []QueueLimit{{Name: "a", MaxRunning: 1}}}, "", true},
		{QueueConfig{MaxRunning: 1}, "", true},
		{QueueConfig{Strategy: "fair", MaxRunning: 1}, `queues.strategy: "fair" is neither FIFO nor FAIR`, true},
		{QueueConfig{MaxRunningPerQueue: -1}, "queues.maxRunningPerQueue: -1 is negative", false},
		{QueueConfig{Queues: []QueueLimit{{Name: "a", MaxRunning: 1}, {Name: "a"}}}, `queues.queues[1]: queue "a" listed twice`, true},
	} {
		err := tc.cfg.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%+v: Validate() = %q, want %q", tc.cfg, got, tc.want)
		}
		if tc.cfg.Enabled() != tc.enabled {
			t.Errorf("%+v: Enabled() = %v, want %v", tc.cfg, !tc.enabled, tc.enabled)
		}
	}
}

// TestQueueConfigFromFile: the queues section as docs/controller.md shows
// it loads into QueueConfig; a misspelt key is refused.
func TestQueueConfigFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	c, err := LoadConfig(write("ok.yaml", `queues:
  strategy: FAIR
  maxRunning: 50
  maxRunningPerQueue: 10
  queues:
  - {name: nightly, maxRunning: 2}
  suspendedHoldSlots: true
`))
	if err != nil {
		t.Fatal(err)
	}
	want := QueueConfig{Strategy: QueueFAIR, MaxRunning: 50, MaxRunningPerQueue: 10,
		Queues: []QueueLimit{{Name: "nightly", MaxRunning: 2}}, SuspendedHoldSlots: true}
	if d := cmp.Diff(want, c.Queues); d != "" {
		t.Fatalf("queues (-want +got):\n%s", d)
	}
	if err := c.Queues.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(write("bad.yaml", "queues: {maxRuning: 5}\n")); err == nil || !strings.Contains(err.Error(), "maxRuning") {
		t.Fatalf("a misspelt queues key: %v, want an error naming it", err)
	}
}
