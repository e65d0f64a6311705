package controller

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/engine"
)

// Queues
//
// With caps configured (QueueConfig), a run does not start when it is
// created: it waits in its queue (spec.queue, else its Workflow's, else
// "default") until the admission structure below lets it run. A run is
// running from its admission until it finishes; a suspended run gives its
// slot back unless SuspendedHoldSlots. The structure lives in memory and
// is fed by every event of the runs' informer (and by each reconcile's
// copy, which may come first); the reconciler asks it before a run's
// first tick. A run that finishes, suspends or is deleted frees its slot,
// and that event admits the next runs and enqueues them: nothing polls.
//
// After a restart the structure is rebuilt from the cache before it
// admits anything: a run counts as running when its status has a
// startTime (its first tick ran), so the caps hold across restarts.
//
// Within a queue, runs wait in creation order (then namespace/name).
// Across queues, FIFO takes the oldest waiting run of any queue with a
// free slot; FAIR takes the queues in turn (round-robin by name), so a
// queue with one waiting run is served next to one with a thousand.

// QueueStrategy is how the next run is picked across queues.
type QueueStrategy string

const (
	// QueueFIFO admits the oldest waiting run first, whatever its queue.
	QueueFIFO QueueStrategy = "FIFO"
	// QueueFAIR admits from the queues in turn.
	QueueFAIR QueueStrategy = "FAIR"
)

// DefaultQueue is the queue of a run that names none and whose Workflow
// names none.
const DefaultQueue = "default"

// QueueConfig is a section of Config: how many runs run at once, in total
// and per queue, and which waiting run starts next. Zero values mean no
// cap; with no cap at all (the default), runs start as soon as they are
// created and queues cost nothing.
type QueueConfig struct {
	// Strategy is FIFO (the default) or FAIR.
	Strategy QueueStrategy `json:"strategy,omitempty"`
	// MaxRunning caps the runs running at once in total (0: no cap).
	MaxRunning int32 `json:"maxRunning,omitempty"`
	// MaxRunningPerQueue caps the runs running at once in each queue that
	// Queues does not list (0: no cap).
	MaxRunningPerQueue int32 `json:"maxRunningPerQueue,omitempty"`
	// Queues override MaxRunningPerQueue for named queues.
	Queues []QueueLimit `json:"queues,omitempty"`
	// SuspendedHoldSlots makes a suspended run keep its running slot. By
	// default it gives it back, and waits for one again when resumed.
	SuspendedHoldSlots bool `json:"suspendedHoldSlots,omitempty"`
}

// QueueLimit is the cap of one named queue.
type QueueLimit struct {
	Name string `json:"name"`
	// MaxRunning caps the queue's running runs (0: no cap).
	MaxRunning int32 `json:"maxRunning"`
}

// Enabled reports whether any cap is set: without one there is no
// admission at all.
func (c QueueConfig) Enabled() bool {
	if c.MaxRunning > 0 || c.MaxRunningPerQueue > 0 {
		return true
	}
	for _, q := range c.Queues {
		if q.MaxRunning > 0 {
			return true
		}
	}
	return false
}

// Validate checks the section; errors name the field.
func (c QueueConfig) Validate() error {
	var errs []error
	switch c.Strategy {
	case "", QueueFIFO, QueueFAIR:
	default:
		errs = append(errs, fmt.Errorf("queues.strategy: %q is neither FIFO nor FAIR", c.Strategy))
	}
	if c.MaxRunning < 0 {
		errs = append(errs, fmt.Errorf("queues.maxRunning: %d is negative", c.MaxRunning))
	}
	if c.MaxRunningPerQueue < 0 {
		errs = append(errs, fmt.Errorf("queues.maxRunningPerQueue: %d is negative", c.MaxRunningPerQueue))
	}
	seen := map[string]bool{}
	for i, q := range c.Queues {
		switch {
		case q.Name == "":
			errs = append(errs, fmt.Errorf("queues.queues[%d]: no name", i))
		case seen[q.Name]:
			errs = append(errs, fmt.Errorf("queues.queues[%d]: queue %q listed twice", i, q.Name))
		}
		seen[q.Name] = true
		if q.MaxRunning < 0 {
			errs = append(errs, fmt.Errorf("queues.queues[%d] (%s): maxRunning %d is negative", i, q.Name, q.MaxRunning))
		}
	}
	return errors.Join(errs...)
}

// queueOf is the queue a run waits in: its own, else its Workflow's
// (wf may be nil), else DefaultQueue.
func queueOf(run *v1alpha1.WorkflowRun, wf *v1alpha1.Workflow) string {
	if q := engine.ResolveOrchestration(run, wf).Queue; q != "" {
		return q
	}
	return DefaultQueue
}

// slotState is where a run stands in the admission structure.
type slotState int

const (
	// waiting for a slot
	slotWaiting slotState = iota
	// admitted and holding a slot (started or about to)
	slotRunning
	// started, suspended, holding no slot
	slotSuspended
	// finished or terminated: kept (a few words) until the run is
	// deleted, so an older copy seen later does not bring it back
	slotDone
)

type queuedRun struct {
	key     types.NamespacedName
	uid     types.UID
	rv      uint64
	queue   string
	created time.Time
	state   slotState
	// since is when it started waiting; shown is the position its status
	// shows (0: none).
	since time.Time
	shown int32
	// started: its first tick ran (status.startTime), so admission does
	// not stamp it again.
	started bool
}

func (a *queuedRun) before(b *queuedRun) bool {
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if a.key.Namespace != b.key.Namespace {
		return a.key.Namespace < b.key.Namespace
	}
	return a.key.Name < b.key.Name
}

type queueState struct {
	waiting []*queuedRun // in admission order
	running int
}

func (q *queueState) insert(r *queuedRun) {
	i := sort.Search(len(q.waiting), func(i int) bool { return r.before(q.waiting[i]) })
	q.waiting = append(q.waiting, nil)
	copy(q.waiting[i+1:], q.waiting[i:])
	q.waiting[i] = r
}

// index is r's place among the waiting runs, or -1.
func (q *queueState) index(r *queuedRun) int {
	i := sort.Search(len(q.waiting), func(i int) bool { return !q.waiting[i].before(r) })
	if i < len(q.waiting) && q.waiting[i] == r {
		return i
	}
	return -1
}

func (q *queueState) remove(r *queuedRun) {
	if i := q.index(r); i >= 0 {
		q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
	}
}

// admission is the in-memory admission structure: the runs not finished,
// their queues, and the slots they hold.
type admission struct {
	cfg    QueueConfig
	limits map[string]int
	now    func() time.Time

	mu      sync.Mutex
	runs    map[types.NamespacedName]*queuedRun
	queues  map[string]*queueState
	running int
	// last is the queue FAIR served last.
	last string
	// synced: the informer has delivered every run that existed at start,
	// so counts are whole and admission may begin.
	synced bool
	// shifted are the queues whose waiting runs moved up since dispatch
	// last looked: their shown positions may be due for a refresh.
	shifted map[string]bool
	// wake enqueues a run for a reconcile (nil until bound), except skip:
	// the run whose reconcile is asking.
	wake    func(types.NamespacedName)
	skip    types.NamespacedName
	metrics *Metrics
}

func newAdmission(cfg QueueConfig, m *Metrics, now func() time.Time) *admission {
	if now == nil {
		now = time.Now
	}
	limits := map[string]int{}
	for _, q := range cfg.Queues {
		limits[q.Name] = int(q.MaxRunning)
	}
	return &admission{cfg: cfg, limits: limits, now: now, metrics: m,
		runs: map[types.NamespacedName]*queuedRun{}, queues: map[string]*queueState{}}
}

func (a *admission) limit(queue string) int {
	if l, ok := a.limits[queue]; ok {
		return l
	}
	return int(a.cfg.MaxRunningPerQueue)
}

func (a *admission) queue(name string) *queueState {
	q := a.queues[name]
	if q == nil {
		q = &queueState{}
		a.queues[name] = q
	}
	return q
}

// free reports whether queue has a slot, in total and its own.
func (a *admission) free(queue string) bool {
	if a.cfg.MaxRunning > 0 && a.running >= int(a.cfg.MaxRunning) {
		return false
	}
	l := a.limit(queue)
	return l <= 0 || a.queue(queue).running < l
}

// observe takes a copy of a run (from an informer event or a reconcile):
// queue is its queue name. Copies older than one seen are ignored. A
// change that frees a slot admits the next runs.
func (a *admission) observe(run *v1alpha1.WorkflowRun, queue string) {
	a.see(run, func() string { return queue }, false)
}

// see is observe, with the run's queue name worked out only for a run not
// known yet (for a run of a Workflow, a read of the cache). reconciling
// says the copy comes from the run's own reconcile, which goes on to tick
// it if it is admitted here: it is not woken for another.
func (a *admission) see(run *v1alpha1.WorkflowRun, queue func() string, reconciling bool) {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	rv, _ := strconv.ParseUint(run.ResourceVersion, 10, 64)
	a.mu.Lock()
	defer a.mu.Unlock()
	if reconciling {
		a.skip = key
		defer func() { a.skip = types.NamespacedName{} }()
	}
	e := a.runs[key]
	if e != nil && e.uid == run.UID && rv != 0 && rv < e.rv {
		return
	}
	if e != nil && e.uid != run.UID {
		a.drop(e)
		e = nil
	}
	st := &run.Status
	// A terminated run that holds a slot keeps it until it finishes (it
	// may roll back first); one that holds none ticks to its end without.
	holding := e != nil && e.uid == run.UID && e.state == slotRunning
	if st.Finished || !run.DeletionTimestamp.IsZero() || (st.Terminated && !holding) {
		if e == nil {
			e = &queuedRun{key: key, uid: run.UID, state: slotDone}
			a.runs[key] = e
		} else if e.state != slotDone {
			a.release(e)
			e.state = slotDone
			a.dispatch()
		}
		e.rv = rv
		return
	}
	started := !st.StartTime.IsZero()
	name := ""
	if e != nil && e.state == slotDone {
		// Restarted (retry-from): admitted anew.
		name = e.queue
		delete(a.runs, key)
		e = nil
	}
	if e == nil {
		if name == "" {
			name = queue()
		}
		e = &queuedRun{key: key, uid: run.UID, queue: name, created: run.CreationTimestamp.Time, since: a.now(), state: slotWaiting}
		if st.Queue != nil && st.Queue.Since != nil {
			e.since = st.Queue.Since.Time
		}
		a.runs[key] = e
		if started {
			// Started before this controller saw it (a restart): it holds
			// a slot, even above the caps.
			e.state = slotRunning
			a.count(e, 1)
		} else {
			a.queue(e.queue).insert(e)
			a.gauges(e.queue)
		}
	}
	e.rv, e.started = rv, started
	if st.Queue != nil {
		e.shown = st.Queue.Position
	}
	suspended := st.Suspend && !a.cfg.SuspendedHoldSlots
	switch {
	case e.state == slotRunning && started && suspended:
		e.state = slotSuspended
		a.count(e, -1)
	case e.state == slotSuspended && !suspended:
		// Resumed: it waits for a slot again, ahead of the runs created
		// after it.
		e.state, e.since = slotWaiting, a.now()
		a.queue(e.queue).insert(e)
		a.gauges(e.queue)
	}
	a.dispatch()
}

// forget drops a deleted run.
func (a *admission) forget(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.runs[key]; e != nil {
		a.drop(e)
		a.dispatch()
	}
}

func (a *admission) drop(e *queuedRun) {
	a.release(e)
	delete(a.runs, e.key)
}

// release takes e out of its queue's waiting runs, or gives its slot back.
func (a *admission) release(e *queuedRun) {
	switch e.state {
	case slotWaiting:
		a.queue(e.queue).remove(e)
		a.gauges(e.queue)
		a.moved(e.queue)
	case slotRunning:
		a.count(e, -1)
	}
}

func (a *admission) count(e *queuedRun, d int) {
	a.running += d
	a.queue(e.queue).running += d
	a.gauges(e.queue)
}

func (a *admission) gauges(queue string) {
	if a.metrics == nil || a.metrics.QueueWaiting == nil {
		return
	}
	q := a.queue(queue)
	a.metrics.QueueWaiting.WithLabelValues(queue).Set(float64(len(q.waiting)))
	a.metrics.QueueRunning.WithLabelValues(queue).Set(float64(q.running))
}

// markSynced is called once the informer has delivered the runs that
// existed at start: admission begins.
func (a *admission) markSynced() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.synced {
		a.synced = true
		a.dispatch()
	}
}

// bind sets how runs are woken.
func (a *admission) bind(wake func(types.NamespacedName)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wake = wake
	a.dispatch()
}

// next picks the next run to admit, or nil.
func (a *admission) next() *queuedRun {
	names := make([]string, 0, len(a.queues))
	for name, q := range a.queues {
		if len(q.waiting) > 0 && a.free(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	if a.cfg.Strategy == QueueFAIR {
		// The first queue after the one served last, cyclically.
		i := sort.SearchStrings(names, a.last)
		if i < len(names) && names[i] == a.last {
			i++
		}
		return a.queues[names[i%len(names)]].waiting[0]
	}
	var best *queuedRun
	for _, name := range names {
		if h := a.queues[name].waiting[0]; best == nil || h.before(best) {
			best = h
		}
	}
	return best
}

// moved notes that the waiting runs of queue moved up.
func (a *admission) moved(queue string) {
	if a.shifted == nil {
		a.shifted = map[string]bool{}
	}
	a.shifted[queue] = true
}

// dispatch admits waiting runs while slots are free and wakes them; then
// wakes the waiting runs whose shown position is off by more than the
// bound (refreshDue). Callers hold a.mu.
func (a *admission) dispatch() {
	if !a.synced {
		return
	}
	for {
		e := a.next()
		if e == nil {
			break
		}
		a.queue(e.queue).remove(e)
		e.state = slotRunning
		a.count(e, 1)
		a.last = e.queue
		a.moved(e.queue)
		if a.metrics != nil && a.metrics.QueueWait != nil {
			a.metrics.QueueWait.WithLabelValues(e.queue).Observe(a.now().Sub(e.since).Seconds())
		}
		if a.wake != nil && e.key != a.skip {
			a.wake(e.key)
		}
	}
	if a.wake == nil {
		return
	}
	moved := a.shifted
	a.shifted = nil
	for name := range moved {
		for i, e := range a.queues[name].waiting {
			if refreshDue(int32(i+1), e.shown) && e.key != a.skip {
				a.wake(e.key)
			}
		}
	}
}

// exactPositions is how far from the head a waiting run's status shows
// its exact position; behind it, a position is rewritten only when it
// halved. So a run that waits behind n others has its status written
// about exactPositions + log2(n) times, not n times, and what it shows is
// never more than twice its true position (it only moves forward).
const exactPositions = 3

// refreshDue reports whether a waiting run at position pos whose status
// shows shown needs its status rewritten.
func refreshDue(pos, shown int32) bool {
	switch {
	case shown == 0 || pos > shown:
		return true
	case pos == shown:
		return false
	case pos <= exactPositions:
		return true
	default:
		return pos <= shown/2
	}
}

// gate reports whether the run may tick: it holds a slot; else its
// queue and its place in it (from 1). It also reports whether the run
// was admitted without a tick so far (its status has no startTime), so
// the reconciler stamps status.queue.admitted.
func (a *admission) gate(key types.NamespacedName) (ok bool, queue string, pos int32, since time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.runs[key]
	if e == nil || e.state == slotDone {
		// Finished, terminated or deleted: its tick needs no slot.
		return true, "", 0, time.Time{}
	}
	if e.state != slotWaiting {
		return true, e.queue, 0, e.since
	}
	return false, e.queue, int32(a.queue(e.queue).index(e) + 1), e.since
}
