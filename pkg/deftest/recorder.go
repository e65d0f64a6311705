package deftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Recorder is an op.Runner that answers op calls from recorded results and
// runs pure and control ops (wait, suspend, fail, ...) for real. It keeps
// every call's decoded parameters.
type Recorder struct {
	ops map[string]Recorded
	// Unrecorded says what a call without a recorded result does.
	unrecorded Unrecorded

	mu      sync.Mutex
	params  map[string]any
	how     map[string]How
	missing []string
}

// How says how a Recorder answered a call.
type How string

const (
	// FromRecord: the call's result is the recorded one.
	FromRecord How = "recorded"
	// NotRun: the call had no recorded result and was not run.
	NotRun How = "not run"
	// Evaluated: a pure or control op (wait, suspend, fail, ...), which
	// has no effect, ran as it would in a step.
	Evaluated How = "evaluated"
)

var _ op.Runner = (*Recorder)(nil)

// Unrecorded is what a Recorder does with a call that has no recorded
// result.
type Unrecorded int

const (
	// FailUnrecorded fails the call permanently: a test case must record
	// every call its template makes.
	FailUnrecorded Unrecorded = iota
	// SkipUnrecorded returns no result and no error: the call is not run,
	// its results stay absent, and what depends on them stays incomplete
	// (def render).
	SkipUnrecorded
)

// NewRecorder returns a Recorder over the recorded results by call path.
func NewRecorder(ops map[string]Recorded, unrecorded Unrecorded) *Recorder {
	return &Recorder{ops: ops, unrecorded: unrecorded, params: map[string]any{}, how: map[string]How{}}
}

// Run implements op.Runner.
func (r *Recorder) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	params, err := plain(call.Params)
	if err != nil {
		return op.Result{}, op.Permanent(fmt.Errorf("params of %s at %s: %w", call.Name, call.Path, err))
	}
	_, pure := call.Op.(op.Pure)
	pure = pure || call.Class == op.Control
	rec, ok := r.ops[call.Path]
	r.mu.Lock()
	r.params[call.Path] = params
	switch {
	case pure:
		r.how[call.Path] = Evaluated
	case ok:
		r.how[call.Path] = FromRecord
	default:
		r.how[call.Path] = NotRun
		r.missing = append(r.missing, call.Name.String()+" "+call.Path)
	}
	r.mu.Unlock()
	if pure {
		return op.Direct.Run(ctx, call)
	}
	if !ok {
		if r.unrecorded == SkipUnrecorded {
			return op.Result{}, nil
		}
		return op.Result{}, op.Permanentf("no recorded result for %s at %s", call.Name, call.Path)
	}
	if rec.Error != "" {
		err := errors.New(rec.Error)
		if rec.Permanent {
			err = op.Permanent(err)
		}
		return op.Result{}, &op.Error{Op: call.Name, Path: call.Path, Permanent: rec.Permanent, Err: err}
	}
	var ret any
	if len(rec.Returns) > 0 {
		if err := json.Unmarshal(rec.Returns, &ret); err != nil {
			return op.Result{}, op.Permanent(fmt.Errorf("recorded result of %s: %w", call.Path, err))
		}
	}
	return op.Result{Returns: ret}, nil
}

// Unrecorded returns the calls ("<op> <path>") that had no recorded result,
// sorted.
func (r *Recorder) Unrecorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.missing...)
	sort.Strings(out)
	return out
}

// How says how the call at path was answered ("" if there was none).
func (r *Recorder) How(path string) How {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.how[path]
}

// Params returns the decoded parameters of the call at path, as JSON data
// (maps, slices, strings, float64s, bools).
func (r *Recorder) Params(path string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.params[path]
	return p, ok
}

// plain is v as JSON data, as a case writes it.
func plain(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
