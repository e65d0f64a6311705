package journal

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Context snapshots. A step of a run sees the run's context variables
// (Vars) as they are when it is evaluated, and they change under it
// ("context set", #DoVar of other steps). Retrying from a step must give it
// the context it saw, not today's, so the engine records, per step attempt,
// the variables the attempt last saw: SnapshotVars at each evaluation,
// SnapshotOf and RestoreVars for the retry.
//
// Snapshots are stored by content: each attempt names a key
// (Data.SnapshotKeys), and each distinct state of the variables is stored
// once under its key (Data.SnapshotValues), so the attempts of a run whose
// variables did not change between them cost one copy. A value no attempt
// names any more is dropped. An attempt evaluated while the run had no
// variables has no key, so a run without variables pays nothing for them.
//
// A snapshot never fails a step. One that would take the journal over
// Limits.MaxTotalBytes is not kept: its attempt names SnapshotUnknown
// instead, and SnapshotOf of it fails with ErrSnapshotNotKept, so a retry
// from its step is refused rather than run with the wrong context.
// Snapshots also give way to entries and variables: an entry or a variable
// that fits the bound only without them drops them (largest first), their
// attempts marked SnapshotUnknown, so a run that fits without snapshots
// never fails for their sake.
//
// Snapshots are dropped only by RetainSnapshots, which the engine calls
// with every attempt its saved status still names (finished ones included,
// unlike Retain), so the snapshot of a step's last attempt stays until a
// retry of the step has been saved.

// SnapshotUnknown is the key of an attempt whose snapshot was not kept
// (over the journal's bound): it saw variables, but which is not known.
const SnapshotUnknown = "unknown"

// ErrSnapshotNotKept is returned by SnapshotOf for an attempt whose
// snapshot was not kept.
var ErrSnapshotNotKept = errors.New("its context snapshot was not kept")

// snapshotKey is the content key of the JSON encoding b of a snapshot:
// json.Marshal writes map keys sorted, so equal variables have equal keys.
func snapshotKey(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// SnapshotVars records vars as what attempt stepID saw. An empty vars
// records nothing; a snapshot equal to the recorded one changes nothing, so
// an attempt evaluated at every tick makes the journal dirty only when the
// variables it sees changed. Variables another attempt saw too are stored
// once. A snapshot that would take the journal over Limits.MaxTotalBytes
// (or that does not marshal) is not kept: the attempt is marked
// SnapshotUnknown, which costs a few bytes and is recorded past the bound,
// so the step goes on. Flush saves it.
func (j *Journal) SnapshotVars(stepID string, vars map[string]any) {
	if len(vars) == 0 {
		return
	}
	key := SnapshotUnknown
	b, err := json.Marshal(vars)
	if err == nil {
		key = snapshotKey(b)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	old, had := j.d.SnapshotKeys[stepID]
	if had && old == key {
		return
	}
	_, stored := j.d.SnapshotValues[key]
	var plain map[string]any
	if key != SnapshotUnknown && !stored && json.Unmarshal(b, &plain) != nil {
		key = SnapshotUnknown
	}
	if j.d.SnapshotKeys == nil {
		j.d.SnapshotKeys = map[string]string{}
	}
	j.d.SnapshotKeys[stepID] = key
	if key != SnapshotUnknown {
		if !stored {
			if j.d.SnapshotValues == nil {
				j.d.SnapshotValues = map[string]map[string]any{}
			}
			j.d.SnapshotValues[key] = plain
		}
		if total, err := j.sizeLocked(); err != nil || total > j.limits.MaxTotalBytes {
			if !stored {
				delete(j.d.SnapshotValues, key)
			}
			key = SnapshotUnknown
			j.d.SnapshotKeys[stepID] = key
		}
	}
	if had && old == key {
		return // unknown again
	}
	if had {
		dropUnnamed(&j.d, old)
	}
	j.chg.snaps[stepID] = key
	delete(j.chg.dropSnaps, stepID)
	j.gen++
}

// SnapshotOf returns a copy of the variables attempt stepID last saw; false
// when it has no snapshot (it saw none, or it is unknown to the journal).
// An attempt whose snapshot was not kept is an error wrapping
// ErrSnapshotNotKept.
func (j *Journal) SnapshotOf(stepID string) (map[string]any, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	key, ok := j.d.SnapshotKeys[stepID]
	if !ok {
		return nil, false, nil
	}
	v, ok := j.d.SnapshotValues[key]
	if !ok {
		return nil, false, fmt.Errorf("%w: the context variables attempt %q saw would have taken the journal over its bound of %d bytes", ErrSnapshotNotKept, stepID, j.limits.MaxTotalBytes)
	}
	return copyValue(v).(map[string]any), true, nil
}

// RestoreVars makes vars the run's context variables: each is set, and any
// other variable is removed. It marks the journal dirty; Flush saves it.
// Like PutVar, it fails with an op.Permanent error, changing nothing, when
// the result would be over Limits.MaxTotalBytes.
func (j *Journal) RestoreVars(vars map[string]any) error {
	b, err := json.Marshal(vars)
	if err != nil {
		return op.Permanentf("context variables: %v", err)
	}
	plain := map[string]any{}
	if err := json.Unmarshal(b, &plain); err != nil && string(b) != "null" {
		return op.Permanentf("context variables: %v", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	old := j.d.Vars
	j.d.Vars = plain
	if err := j.checkTotalLocked("context variables", "(restored)", len(b)); err != nil {
		j.d.Vars = old
		return err
	}
	for k := range old {
		if _, ok := plain[k]; !ok {
			j.chg.unset[k] = true
			delete(j.chg.vars, k)
		}
	}
	for k, v := range plain {
		j.chg.vars[k] = copyValue(v)
		delete(j.chg.unset, k)
	}
	j.gen++
	return nil
}

// makeRoomLocked drops snapshot values, largest first, until the journal
// of the given total size fits Limits.MaxTotalBytes, marking the attempts
// that named them SnapshotUnknown, and returns the new size. It drops
// nothing if dropping them all would not make the journal fit.
func (j *Journal) makeRoomLocked(total int) int {
	if len(j.d.SnapshotValues) == 0 {
		return total
	}
	sizes := make(map[string]int, len(j.d.SnapshotValues))
	keys := make([]string, 0, len(j.d.SnapshotValues))
	all := 0
	for k, v := range j.d.SnapshotValues {
		b, _ := json.Marshal(v)
		sizes[k] = len(b)
		keys = append(keys, k)
		all += len(b)
	}
	if total-all > j.limits.MaxTotalBytes {
		return total
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(sizes[b]-sizes[a], strings.Compare(a, b)) })
	for _, key := range keys {
		for id, k := range j.d.SnapshotKeys {
			if k == key {
				j.d.SnapshotKeys[id] = SnapshotUnknown
				j.chg.snaps[id] = SnapshotUnknown
				delete(j.chg.dropSnaps, id)
			}
		}
		delete(j.d.SnapshotValues, key)
		j.gen++
		if t, err := j.sizeLocked(); err == nil {
			total = t
		}
		if total <= j.limits.MaxTotalBytes {
			break
		}
	}
	return total
}

// RetainSnapshots drops the snapshot of every attempt for which keep
// returns false, and the variables no attempt names any more. Like
// Retain's, the drops are saved with the next Save made for another
// reason.
func (j *Journal) RetainSnapshots(keep func(stepID string) bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var drop changes
	for id, key := range j.d.SnapshotKeys {
		if !keep(id) {
			delete(j.d.SnapshotKeys, id)
			dropUnnamed(&j.d, key)
			drop.init()
			drop.dropSnaps[id] = true
		}
	}
	if drop.put != nil {
		j.chg = j.chg.then(drop)
	}
}

// dropUnnamed drops the snapshot value stored under key if no attempt of d
// names it.
func dropUnnamed(d *Data, key string) {
	if _, ok := d.SnapshotValues[key]; !ok {
		return
	}
	for _, k := range d.SnapshotKeys {
		if k == key {
			return
		}
	}
	delete(d.SnapshotValues, key)
}

// dropAllUnnamed drops every snapshot value of d no attempt names.
func dropAllUnnamed(d *Data) {
	if len(d.SnapshotValues) == 0 {
		return
	}
	named := make(map[string]bool, len(d.SnapshotKeys))
	for _, k := range d.SnapshotKeys {
		named[k] = true
	}
	for k := range d.SnapshotValues {
		if !named[k] {
			delete(d.SnapshotValues, k)
		}
	}
}

// convertOldSnapshots moves the snapshots of d written in full per attempt
// (Data.Snapshots, the first format) to SnapshotKeys and SnapshotValues.
func convertOldSnapshots(d *Data) {
	if len(d.Snapshots) == 0 {
		return
	}
	// d's maps may be its caller's: write to copies.
	d.SnapshotKeys, d.SnapshotValues = maps.Clone(d.SnapshotKeys), maps.Clone(d.SnapshotValues)
	if d.SnapshotKeys == nil {
		d.SnapshotKeys = map[string]string{}
	}
	if d.SnapshotValues == nil {
		d.SnapshotValues = map[string]map[string]any{}
	}
	for id, vars := range d.Snapshots {
		b, err := json.Marshal(vars)
		if err != nil {
			d.SnapshotKeys[id] = SnapshotUnknown
			continue
		}
		key := snapshotKey(b)
		d.SnapshotKeys[id] = key
		d.SnapshotValues[key] = copyValue(vars).(map[string]any)
	}
	d.Snapshots = nil
}
