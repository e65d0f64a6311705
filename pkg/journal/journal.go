package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

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
	// Returns is the op's Result.Returns as JSON.
	Returns json.RawMessage `json:"r,omitempty"`
	// Message is the op's Result.Message.
	Message string `json:"m,omitempty"`
	// Suspended says a #Suspend of this attempt stopped its step.
	Suspended bool `json:"s,omitempty"`
}

// Data is what a Store keeps for one run: the journal entries and the run's
// context variables set at run time.
type Data struct {
	// Logs are the last #Log lines of each step, by step name.
	Logs    map[string][]string `json:"logs,omitempty"`
	Entries map[string]Entry    `json:"entries,omitempty"`
	Vars    map[string]any      `json:"vars,omitempty"`
}

// Default bounds. A ConfigMap holds 1 MiB; the rest is left for its
// metadata and the encoding around the data.
const (
	DefaultMaxEntryBytes = 64 << 10
	DefaultMaxTotalBytes = 768 << 10
)

// Limits bound the JSON encoding of one entry and of the whole Data. A zero
// or negative field takes its default.
type Limits struct {
	MaxEntryBytes int
	MaxTotalBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntryBytes <= 0 {
		l.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	return l
}

// Journal is the journal of one run, kept in a Store. It is safe for
// concurrent use.
type Journal struct {
	store  Store
	limits Limits

	// saveMu makes Saves one at a time, so a Save never overwrites a newer
	// one. It is taken before mu.
	saveMu sync.Mutex

	mu sync.Mutex
	d  Data
	// gen counts changes; saved is the gen of the last successful Save.
	// The journal is dirty while they differ.
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
	return &Journal{store: s, limits: l.withDefaults(), d: copyData(d)}
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
	j.d.Entries[key] = e
	if err := j.checkTotalLocked("journal entry", key, len(b)); err != nil {
		if had {
			j.d.Entries[key] = old
		} else {
			delete(j.d.Entries, key)
		}
		j.mu.Unlock()
		return err
	}
	j.gen++
	snap, gen := copyData(j.d), j.gen
	j.mu.Unlock()
	if err := j.save(ctx, snap, gen); err != nil {
		// Keep the journal what the store holds: a record that was not
		// saved is lost, as it would be in a crash.
		j.mu.Lock()
		if had {
			j.d.Entries[key] = old
		} else {
			delete(j.d.Entries, key)
		}
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
	if j.gen == j.saved {
		j.mu.Unlock()
		return nil
	}
	snap, gen := copyData(j.d), j.gen
	j.mu.Unlock()
	return j.save(ctx, snap, gen)
}

// save saves snap, the journal as of change gen. The caller holds saveMu.
func (j *Journal) save(ctx context.Context, snap Data, gen uint64) error {
	if err := j.store.Save(ctx, snap); err != nil {
		return fmt.Errorf("journal: save: %w: %w", ErrSave, err)
	}
	j.mu.Lock()
	j.saved = gen
	j.mu.Unlock()
	return nil
}

// Reset drops every entry and variable, for a restart of the run, and marks
// the journal dirty.
func (j *Journal) Reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.d = copyData(Data{})
	j.gen++
}

// ForgetSteps drops the entries of the given step attempts. It marks the
// journal dirty if it dropped any.
func (j *Journal) ForgetSteps(stepIDs ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	dropped := false
	for key := range j.d.Entries {
		for _, id := range stepIDs {
			if strings.HasPrefix(key, id+"/") {
				delete(j.d.Entries, key)
				dropped = true
				break
			}
		}
	}
	if dropped {
		j.gen++
	}
}

// Data returns a deep copy of the journal's data.
func (j *Journal) Data() Data {
	j.mu.Lock()
	defer j.mu.Unlock()
	return copyData(j.d)
}

// Size returns the length in bytes of the JSON encoding of the journal's
// data, the measure Limits.MaxTotalBytes bounds. It is 0 if the data does
// not marshal, which only data handed to New can cause.
func (j *Journal) Size() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, _ := j.sizeLocked()
	return n
}

func (j *Journal) sizeLocked() (int, error) {
	b, err := json.Marshal(j.d)
	return len(b), err
}

// checkTotalLocked fails with an op.Permanent error if the journal, with
// the entry or variable of the given size just put under name, is over
// Limits.MaxTotalBytes or does not marshal.
func (j *Journal) checkTotalLocked(what, name string, size int) error {
	total, err := j.sizeLocked()
	if err != nil {
		return op.Permanentf("journal does not marshal: %v", err)
	}
	if total > j.limits.MaxTotalBytes {
		return op.Permanentf("%s %q (%d bytes) would make the journal %d bytes, over the bound of %d bytes", what, name, size, total, j.limits.MaxTotalBytes)
	}
	return nil
}

// copyData returns a deep copy of d with non-nil maps.
func copyData(d Data) Data {
	out := Data{Entries: make(map[string]Entry, len(d.Entries)), Vars: make(map[string]any, len(d.Vars))}
	for k, e := range d.Entries {
		out.Entries[k] = copyEntry(e)
	}
	for k, v := range d.Vars {
		out.Vars[k] = copyValue(v)
	}
	if len(d.Logs) > 0 {
		out.Logs = make(map[string][]string, len(d.Logs))
		for k, l := range d.Logs {
			out.Logs[k] = append([]string(nil), l...)
		}
	}
	return out
}

// MaxLogLines bounds the #Log lines kept per step.
const MaxLogLines = 100

// StepLog keeps a #Log line of a step (op.LogSink). #Log runs on every
// evaluation, so a line equal to the step's last one is not kept again.
// Lines beyond MaxLogLines push out the oldest; Flush saves them.
func (j *Journal) StepLog(step op.Step, _ int, line string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.d.Logs == nil {
		j.d.Logs = map[string][]string{}
	}
	lines := j.d.Logs[step.StepName]
	if n := len(lines); n > 0 && lines[n-1] == line {
		return
	}
	lines = append(lines, line)
	if len(lines) > MaxLogLines {
		lines = lines[len(lines)-MaxLogLines:]
	}
	j.d.Logs[step.StepName] = lines
	j.gen++
}

// Logs returns the kept #Log lines of a step.
func (j *Journal) Logs(step string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.d.Logs[step]...)
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
