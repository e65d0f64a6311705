package journal

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Runner wraps base with the rule of the package doc: Idempotent calls
// always reach base, Effect calls reach it once per step attempt and are
// replayed after, and a #Suspend stops its step once per step attempt.
// Errors come back as *op.Error, as from op.Direct.
func (j *Journal) Runner(base op.Runner) op.Runner {
	return j.runner(base, nil)
}

// RunnerResuming is Runner for an executor that keeps which suspends of the
// attempt were resumed itself, with the suspension, in one object (the
// run's status): resumed(path) says whether the #Suspend at path was
// resumed. Suspends are then not recorded in the journal, so no crash
// between two writes can make a suspend that never suspended count as
// resumed.
func (j *Journal) RunnerResuming(base op.Runner, resumed func(path string) bool) op.Runner {
	return j.runner(base, resumed)
}

func (j *Journal) runner(base op.Runner, resumed func(path string) bool) op.Runner {
	return op.RunnerFunc(func(ctx context.Context, call *op.Call) (op.Result, error) {
		switch call.Class {
		case op.Idempotent:
			return base.Run(ctx, call)
		case op.Effect:
			return j.runEffect(ctx, base, call)
		case op.Control:
			if resumed != nil {
				res, err := base.Run(ctx, call)
				if err == nil && res.Stop != nil && res.Stop.Kind == op.Suspend && resumed(call.Path) {
					return op.Result{Returns: res.Returns}, nil
				}
				return res, err
			}
			return j.runControl(ctx, base, call)
		}
		return op.Result{}, callError(call, op.Permanentf("unknown op class %v", call.Class))
	})
}

func (j *Journal) runEffect(ctx context.Context, base op.Runner, call *op.Call) (op.Result, error) {
	key := Key(call.Step.StepID, call.Path)
	if e, ok := j.Lookup(key); ok {
		return replay(call, key, e)
	}
	res, err := base.Run(ctx, call)
	if err != nil {
		return res, err
	}
	e := Entry{Op: call.Kind(), Message: res.Message}
	if res.Returns != nil {
		if e.Returns, err = json.Marshal(res.Returns); err != nil {
			return op.Result{}, callError(call, op.Permanentf("journal entry %q: returns: %v", key, err))
		}
	}
	if err := j.Record(ctx, key, e); err != nil {
		return op.Result{}, callError(call, err)
	}
	return res, nil
}

// replay turns a recorded Effect call back into its result. A record that
// does not decode fails the call for good: calling the op again could repeat
// its effect.
func replay(call *op.Call, key string, e Entry) (op.Result, error) {
	if err := sameOp(call, e); err != nil {
		return op.Result{}, err
	}
	res := op.Result{Message: e.Message}
	if len(e.Returns) > 0 {
		if err := json.Unmarshal(e.Returns, &res.Returns); err != nil {
			return op.Result{}, callError(call, op.Permanentf("journal entry %q: returns: %v", key, err))
		}
	}
	return res, nil
}

func (j *Journal) runControl(ctx context.Context, base op.Runner, call *op.Call) (op.Result, error) {
	res, err := base.Run(ctx, call)
	if err != nil || res.Stop == nil || res.Stop.Kind != op.Suspend {
		return res, err
	}
	key := Key(call.Step.StepID, call.Path)
	if e, ok := j.Lookup(key); ok && e.Suspended {
		if err := sameOp(call, e); err != nil {
			return op.Result{}, err
		}
		// This attempt already suspended here and was resumed.
		return op.Result{Returns: res.Returns}, nil
	}
	if err := j.Record(ctx, key, Entry{Op: call.Kind(), Suspended: true}); err != nil {
		return op.Result{}, callError(call, err)
	}
	return res, nil
}

// sameOp fails the call for good if the entry at its key was recorded by
// another op: the step's definition changed during the attempt and another
// op now sits at the path. Replaying the old result would pass off one op's
// effect as another's; running the new op would break the attempt's
// exactly-once promise for the old one. Entries recorded before entries
// named their op are replayed.
func sameOp(call *op.Call, e Entry) error {
	if e.Op == "" || e.Op == call.Kind() {
		return nil
	}
	return callError(call, op.Permanentf("step %q: the journal entry at path %q of attempt %s was recorded by op %s, but the step's definition now calls %s there (the definition changed during the attempt); retry the step to start a new attempt",
		call.Step.StepName, call.Path, call.Step.StepID, e.Op, call.Kind()))
}

// callError puts err into the one shape of op errors.
func callError(call *op.Call, err error) error {
	var e *op.Error
	if errors.As(err, &e) {
		return err
	}
	return &op.Error{Op: call.Name, Path: call.Path, Permanent: op.IsPermanent(err), Err: err}
}
