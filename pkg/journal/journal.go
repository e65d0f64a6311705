package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// ErrSave wraps a Store's failure to save. For an effect it means the
// effect happened but its record may be lost: the executor evaluates the
// same attempt again (same step id, same Idempotency-Key) rather than
// starting a new one.
var ErrSave = errors.New("the journal could not be saved")

// Key is the identity of one op call of one step attempt: the attempt's
// StepID and the call's path in the template. It equals op.Call.Key.
func Key(stepID, path string) string { return stepID + "/" + path }

// Entry is what one op call of a step attempt returned.
type Entry struct {
	// Op is the kind of call that made the entry (op.Call.Kind: the op's
	// name, and for HTTP its method). A call at the same path of another
	// kind, after the definition changed mid-attempt, is not given this
	// entry (see the package doc).
	Op string `json:"o,omitempty"`
	// Returns is the op's Result.Returns as JSON.
	Returns json.RawMessage `json:"r,omitempty"`
	// Message is the op's Result.Message.
	Message string `json:"m,omitempty"`
	// Suspended says a #Suspend of this attempt stopped its step.
	Suspended bool `json:"s,omitempty"`
}

// Data is what a Store keeps for one run: the journal entries, the run's
// context variables set at run time, and the steps' #Log lines.
type Data struct {
	Entries map[string]Entry `json:"entries,omitempty"`
	Vars    map[string]any   `json:"vars,omitempty"`
	// Restarts is the restart count of the run (status.restartCount) the
	// Vars were set under; see Journal.Restarted.
	Restarts int32 `json:"restarts,omitempty"`
	// SnapshotKeys name, by StepID, the context variables each step
	// attempt saw when it was last evaluated: a key of SnapshotValues, or
	// SnapshotUnknown when they were not kept. An attempt that saw none has
	// none (see Journal.SnapshotVars).
	SnapshotKeys map[string]string `json:"snapshotKeys,omitempty"`
	// SnapshotValues are the context variables of the snapshots, each
	// distinct state once, by content key.
	SnapshotValues map[string]map[string]any `json:"snapshotValues,omitempty"`
	// Snapshots is the first format of the snapshots, each attempt's
	// variables in full. It is only read: a journal converts it to
	// SnapshotKeys and SnapshotValues, and never writes it.
	Snapshots map[string]map[string]any `json:"snapshots,omitempty"`
	// Logs are the last #Log lines of each step, by step name, within the
	// bounds of Limits. A store keeps them apart from the rest (kubestore:
	// in their own key), and they never count against MaxTotalBytes.
	Logs map[string][]string `json:"logs,omitempty"`
	// LogsDropped counts the lines of each step pushed out by the bounds;
	// the step's first kept line then says so.
	LogsDropped map[string]int `json:"logsDropped,omitempty"`
	// LogTimes are when each line of Logs was written, in Unix
	// milliseconds, by step name. A step's times go with its last lines:
	// in a journal written before times were kept, a step's first lines
	// have none (LogTime). 0 stands for an unknown time.
	LogTimes map[string][]int64 `json:"logTimes,omitempty"`
}

// Default bounds. A ConfigMap holds 1 MiB: entries and variables, logs,
// and the ConfigMap's metadata and encoding must fit in it together.
const (
	DefaultMaxEntryBytes   = 64 << 10
	DefaultMaxTotalBytes   = 768 << 10
	DefaultMaxLogLineBytes = 2 << 10
	DefaultMaxStepLogBytes = 16 << 10
	DefaultMaxRunLogBytes  = 128 << 10
)

// Limits bound the JSON encoding of one entry, of the entries and
// variables together, and of the #Log lines of one line, one step and the
// whole run. A zero or negative field takes its default.
type Limits struct {
	MaxEntryBytes   int
	MaxTotalBytes   int
	MaxLogLineBytes int
	MaxStepLogBytes int
	MaxRunLogBytes  int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxEntryBytes, DefaultMaxEntryBytes)
	def(&l.MaxTotalBytes, DefaultMaxTotalBytes)
	def(&l.MaxLogLineBytes, DefaultMaxLogLineBytes)
	def(&l.MaxStepLogBytes, DefaultMaxStepLogBytes)
	def(&l.MaxRunLogBytes, DefaultMaxRunLogBytes)
	return l
}

// changes are what a journal changed since its last successful Save: its
// own part of the data, which it puts over what another writer saved
// meanwhile when its Save conflicts.
type changes struct {
	put  map[string]Entry
	drop map[string]bool
	vars map[string]any
	// unset are variables removed (RestoreVars).
	unset map[string]bool
	// snaps and dropSnaps are snapshot keys recorded and dropped, by
	// StepID.
	snaps     map[string]string
	dropSnaps map[string]bool
	// restarts is set by Restarted: the variables of earlier restarts go.
	restarts int32
	reset    bool
	logs     map[string]bool
}

func (c *changes) init() {
	if c.put == nil {
		*c = changes{put: map[string]Entry{}, drop: map[string]bool{}, vars: map[string]any{}, logs: map[string]bool{},
			unset: map[string]bool{}, snaps: map[string]string{}, dropSnaps: map[string]bool{}}
	}
}

// then returns c followed by the later changes n.
func (c changes) then(n changes) changes {
	c.init()
	for k := range n.drop {
		delete(c.put, k)
		c.drop[k] = true
	}
	for k, e := range n.put {
		c.put[k] = e
		delete(c.drop, k)
	}
	if n.reset && (!c.reset || n.restarts > c.restarts) {
		c.reset, c.restarts = true, n.restarts
		clear(c.vars)
	}
	for k, v := range n.vars {
		c.vars[k] = v
		delete(c.unset, k)
	}
	for k := range n.unset {
		delete(c.vars, k)
		c.unset[k] = true
	}
	for k := range n.dropSnaps {
		delete(c.snaps, k)
		c.dropSnaps[k] = true
	}
	for k, v := range n.snaps {
		c.snaps[k] = v
		delete(c.dropSnaps, k)
	}
	for k := range n.logs {
		c.logs[k] = true
	}
	return c
}

// Journal is the journal of one run, kept in a Store. It is safe for
// concurrent use.
type Journal struct {
	store  Store
	limits Limits
	// now stamps #Log lines (WithClock).
	now func() time.Time

	// saveMu makes Saves one at a time, so a Save never overwrites a newer
	// one. It is taken before mu.
	saveMu sync.Mutex

	mu sync.Mutex
	d  Data
	// chg are the changes not saved yet.
	chg changes
	// gen counts changes to variables; saved is the gen of the last
	// successful Save. The journal is dirty while they differ, or while
	// chg.logs names a step whose log lines are not saved yet. Drops made
	// by Retain do not count: they go with the next Save made for another
	// reason.
	gen, saved uint64
}

// Open loads the run's journal from s.
func Open(ctx context.Context, s Store, l Limits) (*Journal, error) {
	d, err := s.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: load: %w", err)
	}
	return New(d, s, l), nil
}

// New returns the journal of already loaded data d, kept in s. The journal
// works on a copy of d.
func New(d Data, s Store, l Limits) *Journal {
	j := &Journal{store: s, limits: l.withDefaults(), d: copyData(d), now: time.Now}
	j.chg.init()
	return j
}

// WithClock makes now the clock that stamps #Log lines (the engine's, so
// a run's lines carry the times of its ticks), in place of time.Now. It
// returns j.
func (j *Journal) WithClock(now func() time.Time) *Journal {
	if now != nil {
		j.now = now
	}
	return j
}

// Lookup returns the entry recorded under key.
func (j *Journal) Lookup(key string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.d.Entries[key]
	return copyEntry(e), ok
}

// Record stores e under key and saves the journal to the store at once, so
// the record survives a crash right after it. An entry over
// Limits.MaxEntryBytes, or one that would take the journal over
// Limits.MaxTotalBytes, is not stored and fails with an op.Permanent error
// naming the key, its size and the bound. If the Save fails, e is not
// stored either, as if the process had crashed before the Save; the error is
// returned.
func (j *Journal) Record(ctx context.Context, key string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return op.Permanentf("journal entry %q: %v", key, err)
	}
	if len(b) > j.limits.MaxEntryBytes {
		return op.Permanentf("journal entry %q is %d bytes, over the bound of %d bytes per entry", key, len(b), j.limits.MaxEntryBytes)
	}
	e = copyEntry(e)

	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	old, had := j.d.Entries[key]
	oldPut, hadPut := j.chg.put[key]
	undo := func() {
		if had {
			j.d.Entries[key] = old
		} else {
			delete(j.d.Entries, key)
		}
		if hadPut {
			j.chg.put[key] = oldPut
		} else {
			delete(j.chg.put, key)
		}
	}
	j.d.Entries[key] = e
	if err := j.checkTotalLocked("journal entry", key, len(b)); err != nil {
		undo()
		j.mu.Unlock()
		return err
	}
	j.chg.put[key] = e
	delete(j.chg.drop, key)
	// No gen++: the record is saved now or undone, so it never leaves the
	// journal dirty (a failed record must not fail the tick's Flush too).
	j.mu.Unlock()
	if err := j.saveLocked(ctx); err != nil {
		// Keep the journal what the store holds: a record that was not
		// saved is lost, as it would be in a crash.
		j.mu.Lock()
		undo()
		j.mu.Unlock()
		return err
	}
	return nil
}

// GetVar returns a copy of the context variable at path. With PutVar it
// implements op.Vars.
func (j *Journal) GetVar(path string) (any, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v, ok := j.d.Vars[path]
	return copyValue(v), ok
}

// PutVar sets the context variable at path to v, as it reads after a JSON
// round trip, and marks the journal dirty; Flush saves it. A value that does
// not marshal, or that would take the journal over Limits.MaxTotalBytes,
// fails with an op.Permanent error and is not stored.
func (j *Journal) PutVar(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return op.Permanentf("context variable %q: %v", path, err)
	}
	var plain any
	if err := json.Unmarshal(b, &plain); err != nil {
		return op.Permanentf("context variable %q: %v", path, err)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	old, had := j.d.Vars[path]
	j.d.Vars[path] = plain
	if err := j.checkTotalLocked("context variable", path, len(b)); err != nil {
		if had {
			j.d.Vars[path] = old
		} else {
			delete(j.d.Vars, path)
		}
		return err
	}
	j.chg.vars[path] = copyValue(plain)
	j.gen++
	return nil
}

// SetVar is PutVar, for the "set context variable" operation.
func (j *Journal) SetVar(path string, v any) error { return j.PutVar(path, v) }

var _ op.Vars = (*Journal)(nil)

// Vars returns a copy of the context variables.
func (j *Journal) Vars() map[string]any {
	j.mu.Lock()
	defer j.mu.Unlock()
	return copyValue(j.d.Vars).(map[string]any)
}

// Flush saves the journal if it changed since the last successful Save.
func (j *Journal) Flush(ctx context.Context) error {
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	vars, logs := j.gen != j.saved, len(j.chg.logs) > 0
	j.mu.Unlock()
	if !vars && !logs {
		return nil
	}
	err := j.saveLocked(ctx)
	if err != nil && !vars {
		return fmt.Errorf("%w: %w", ErrLogsNotSaved, err)
	}
	return err
}

// ErrLogsNotSaved is wrapped by Flush's error when only log lines were
// left to save: they stay in memory for the next Save, and a caller may go
// on without them (they are for people, not for the exactly-once rule).
var ErrLogsNotSaved = errors.New("only #Log lines were not saved")

// saveTries bounds the Saves of one change while other writers keep
// changing the store first.
const saveTries = 5

// saveLocked saves the journal. On ErrConflict it loads what the other
// writer saved, puts its own changes over it and tries again. The caller
// holds saveMu.
func (j *Journal) saveLocked(ctx context.Context) error {
	for try := 1; ; try++ {
		j.mu.Lock()
		snap, gen, chg := copyData(j.d), j.gen, j.chg
		j.chg = changes{}
		j.chg.init()
		j.mu.Unlock()
		err := j.store.Save(ctx, snap)
		if err == nil {
			j.mu.Lock()
			j.saved = gen
			j.mu.Unlock()
			return nil
		}
		j.mu.Lock()
		j.chg = chg.then(j.chg)
		j.mu.Unlock()
		if !errors.Is(err, ErrConflict) || try == saveTries {
			return fmt.Errorf("journal: save: %w: %w", ErrSave, err)
		}
		theirs, lerr := j.store.Load(ctx)
		if lerr != nil {
			return fmt.Errorf("journal: save: %w: %w; reloading: %w", ErrSave, err, lerr)
		}
		j.mu.Lock()
		j.d = j.chg.over(copyData(theirs), j.d)
		j.mu.Unlock()
	}
}

// over puts the changes c, made to the data mine, over theirs, the data
// another writer saved meanwhile, and returns the result. Entries are added
// once: an entry theirs already holds stays. Variables and a step's logs
// are the last writer's.
func (c changes) over(theirs, mine Data) Data {
	if c.reset && theirs.Restarts < c.restarts {
		theirs.Vars, theirs.Restarts = map[string]any{}, c.restarts
	}
	for k := range c.drop {
		delete(theirs.Entries, k)
	}
	for k, e := range c.put {
		if _, ok := theirs.Entries[k]; !ok {
			theirs.Entries[k] = e
		}
	}
	if theirs.Restarts <= mine.Restarts {
		for k, v := range c.vars {
			theirs.Vars[k] = v
		}
		for k := range c.unset {
			delete(theirs.Vars, k)
		}
	}
	for k := range c.dropSnaps {
		delete(theirs.SnapshotKeys, k)
	}
	for k, key := range c.snaps {
		if theirs.SnapshotKeys == nil {
			theirs.SnapshotKeys = map[string]string{}
		}
		theirs.SnapshotKeys[k] = key
		if v, ok := mine.SnapshotValues[key]; ok {
			if theirs.SnapshotValues == nil {
				theirs.SnapshotValues = map[string]map[string]any{}
			}
			theirs.SnapshotValues[key] = v
		}
	}
	dropAllUnnamed(&theirs)
	for step := range c.logs {
		if theirs.Logs == nil {
			theirs.Logs = map[string][]string{}
		}
		if theirs.LogsDropped == nil {
			theirs.LogsDropped = map[string]int{}
		}
		theirs.Logs[step] = mine.Logs[step]
		theirs.LogsDropped[step] = mine.LogsDropped[step]
		if times, ok := mine.LogTimes[step]; ok {
			if theirs.LogTimes == nil {
				theirs.LogTimes = map[string][]int64{}
			}
			theirs.LogTimes[step] = times
		}
	}
	return copyData(theirs)
}

// Restarted tells the journal the run's restart count in its saved status.
// Variables set under an earlier count belong to a run that has been
// restarted since, and are dropped. Like Retain, the drop is saved with the
// next Save, and the engine calls it at every tick, so it holds until then.
func (j *Journal) Restarted(restarts int32) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.d.Restarts >= restarts {
		return
	}
	j.d.Vars, j.d.Restarts = map[string]any{}, restarts
	j.chg = j.chg.then(changes{reset: true, restarts: restarts})
}

// Retain drops the entries of every step attempt for which live returns
// false: attempts that the run's saved status has abandoned (retried,
// restarted, finished). The engine calls it at the start of each tick,
// whose input status is the saved one, so an attempt's entries go only
// after the status that abandons the attempt has been saved. The drops do
// not make the journal dirty: they are saved with the next Save made for
// another reason (a record, a variable, a log line).
func (j *Journal) Retain(live func(stepID string) bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var drop changes
	for key := range j.d.Entries {
		if !live(stepIDOf(key)) {
			delete(j.d.Entries, key)
			drop.init()
			drop.drop[key] = true
		}
	}
	if drop.put != nil {
		j.chg = j.chg.then(drop)
	}
}

// stepIDOf returns the StepID of Key(stepID, path). Step ids hold no "/"
// (engine.StepID: the step name, which is a Kubernetes name, and a hash).
func stepIDOf(key string) string {
	id, _, _ := strings.Cut(key, "/")
	return id
}

// Data returns a deep copy of the journal's data.
func (j *Journal) Data() Data {
	j.mu.Lock()
	defer j.mu.Unlock()
	return copyData(j.d)
}

// Size returns the length in bytes of the JSON encoding of the journal's
// entries and variables, the measure Limits.MaxTotalBytes bounds. It is 0
// if they do not marshal, which only data handed to New can cause.
func (j *Journal) Size() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, _ := j.sizeLocked()
	return n
}

func (j *Journal) sizeLocked() (int, error) {
	b, err := json.Marshal(Data{Entries: j.d.Entries, Vars: j.d.Vars, Restarts: j.d.Restarts,
		SnapshotKeys: j.d.SnapshotKeys, SnapshotValues: j.d.SnapshotValues})
	return len(b), err
}

// checkTotalLocked fails with an op.Permanent error if the journal, with
// the entry or variable of the given size just put under name, is over
// Limits.MaxTotalBytes or does not marshal. Context snapshots give way:
// if dropping them makes room, they are dropped (makeRoomLocked), so an
// entry or a variable never fails for a snapshot's sake.
func (j *Journal) checkTotalLocked(what, name string, size int) error {
	total, err := j.sizeLocked()
	if err != nil {
		return op.Permanentf("journal does not marshal: %v", err)
	}
	if total > j.limits.MaxTotalBytes {
		total = j.makeRoomLocked(total)
	}
	if total > j.limits.MaxTotalBytes {
		return op.Permanentf("%s %q (%d bytes) would make the journal %d bytes, over the bound of %d bytes", what, name, size, total, j.limits.MaxTotalBytes)
	}
	return nil
}

// copyData returns a deep copy of d with non-nil maps, its snapshots in
// the first format converted (convertOldSnapshots).
func copyData(d Data) Data {
	out := Data{Entries: make(map[string]Entry, len(d.Entries)), Vars: make(map[string]any, len(d.Vars)), Restarts: d.Restarts}
	for k, e := range d.Entries {
		out.Entries[k] = copyEntry(e)
	}
	for k, v := range d.Vars {
		out.Vars[k] = copyValue(v)
	}
	if len(d.Snapshots) > 0 {
		convertOldSnapshots(&d)
	}
	if len(d.SnapshotKeys) > 0 {
		out.SnapshotKeys = maps.Clone(d.SnapshotKeys)
	}
	if len(d.SnapshotValues) > 0 {
		out.SnapshotValues = make(map[string]map[string]any, len(d.SnapshotValues))
		for k, v := range d.SnapshotValues {
			out.SnapshotValues[k] = copyValue(v).(map[string]any)
		}
	}
	if len(d.Logs) > 0 {
		out.Logs = make(map[string][]string, len(d.Logs))
		for k, l := range d.Logs {
			out.Logs[k] = append([]string(nil), l...)
		}
	}
	if len(d.LogsDropped) > 0 {
		out.LogsDropped = maps.Clone(d.LogsDropped)
	}
	if len(d.LogTimes) > 0 {
		out.LogTimes = make(map[string][]int64, len(d.LogTimes))
		for k, t := range d.LogTimes {
			out.LogTimes[k] = append([]int64(nil), t...)
		}
	}
	return out
}

func copyEntry(e Entry) Entry {
	e.Returns = bytes.Clone(e.Returns)
	return e
}

// copyValue deep-copies a value made of maps and slices as JSON decodes to;
// any other value is returned as it is.
func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = copyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}
