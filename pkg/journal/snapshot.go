package journal

import (
	"encoding/json"
	"reflect"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Context snapshots. A step of a run sees the run's context variables
// (Vars) as they are when it is evaluated, and they change under it
// ("context set", #DoVar of other steps). Retrying from a step must give it
// the context it saw, not today's, so the engine records, per step attempt,
// the variables the attempt last saw: SnapshotVars at each evaluation,
// SnapshotOf and RestoreVars for the retry. An attempt evaluated while the
// run had no variables has no snapshot, so a run without variables pays
// nothing for them. Snapshots are dropped only by RetainSnapshots, which
// the engine calls with every attempt its saved status still names
// (finished ones included, unlike Retain), so the snapshot of a step's last
// attempt stays until a retry of the step has been saved.

// SnapshotVars records vars as what attempt stepID saw. An empty vars
// records nothing; a snapshot equal to the recorded one changes nothing, so
// an attempt evaluated at every tick makes the journal dirty only when the
// variables it sees changed. A snapshot that would take the journal over
// Limits.MaxTotalBytes fails with an op.Permanent error and is not kept.
// Flush saves it.
func (j *Journal) SnapshotVars(stepID string, vars map[string]any) error {
	if len(vars) == 0 {
		return nil
	}
	b, err := json.Marshal(vars)
	if err != nil {
		return op.Permanentf("context snapshot of step attempt %q: %v", stepID, err)
	}
	var plain map[string]any
	if err := json.Unmarshal(b, &plain); err != nil {
		return op.Permanentf("context snapshot of step attempt %q: %v", stepID, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	old, had := j.d.Snapshots[stepID]
	if had && reflect.DeepEqual(old, plain) {
		return nil
	}
	if j.d.Snapshots == nil {
		j.d.Snapshots = map[string]map[string]any{}
	}
	j.d.Snapshots[stepID] = plain
	if err := j.checkTotalLocked("context snapshot of step attempt", stepID, len(b)); err != nil {
		if had {
			j.d.Snapshots[stepID] = old
		} else {
			delete(j.d.Snapshots, stepID)
		}
		return err
	}
	j.chg.snaps[stepID] = copyValue(plain).(map[string]any)
	delete(j.chg.dropSnaps, stepID)
	j.gen++
	return nil
}

// SnapshotOf returns a copy of the variables attempt stepID last saw; false
// when it has no snapshot (it saw none, or it is unknown).
func (j *Journal) SnapshotOf(stepID string) (map[string]any, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v, ok := j.d.Snapshots[stepID]
	if !ok {
		return nil, false
	}
	return copyValue(v).(map[string]any), true
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

// RetainSnapshots drops the snapshot of every attempt for which keep
// returns false. Like Retain's, the drops are saved with the next Save
// made for another reason.
func (j *Journal) RetainSnapshots(keep func(stepID string) bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var drop changes
	for id := range j.d.Snapshots {
		if !keep(id) {
			delete(j.d.Snapshots, id)
			drop.init()
			drop.dropSnaps[id] = true
		}
	}
	if drop.put != nil {
		j.chg = j.chg.then(drop)
	}
}
