// Package optest is the conformance suite every op family runs: each op
// decodes into a fresh params value, honours context cancellation, returns
// errors in the one shape (*op.Error), keeps no state shared between two
// family instances, and an idempotent call run twice returns the same thing.
package optest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Case is one call to exercise.
type Case struct {
	Name string
	// Do names the op within the family.
	Do string
	// Params builds the op's params (the value NewParams would be decoded to).
	Params func() any
	// Step is the step the call belongs to; a default is used when zero.
	Step op.Step
	// Env is passed to the call.
	Env op.Env
	// Invalid says the params are bad: the call must fail with a permanent
	// *op.Error.
	Invalid bool
	// Normalize, if set, clears volatile parts of Returns (timestamps, ...)
	// before two idempotent runs are compared.
	Normalize func(any) any
}

// Suite is a family under test.
type Suite struct {
	// New builds a fresh family instance with its dependencies.
	New   func() op.Family
	Cases []Case
}

// Run runs the conformance checks.
func Run(t *testing.T, s Suite) {
	t.Helper()
	f1, f2 := s.New(), s.New()

	t.Run("params", func(t *testing.T) {
		for do, o := range f1.Ops() {
			p1, p2 := o.NewParams(), o.NewParams()
			if p1 == nil || reflect.ValueOf(p1).Kind() != reflect.Pointer {
				t.Errorf("%s.%s: NewParams must return a non-nil pointer, got %T", f1.Provider(), do, p1)
				continue
			}
			if reflect.ValueOf(p1).Pointer() == reflect.ValueOf(p2).Pointer() {
				t.Errorf("%s.%s: NewParams returned the same pointer twice", f1.Provider(), do)
			}
			_ = o.Class(p1)
		}
	})

	t.Run("no shared state", func(t *testing.T) {
		for do, o := range f1.Ops() {
			o2, ok := f2.Ops()[do]
			if !ok {
				t.Errorf("%s: second instance lacks op %q", f1.Provider(), do)
				continue
			}
			rv1, rv2 := reflect.ValueOf(o), reflect.ValueOf(o2)
			if rv1.Kind() == reflect.Pointer && rv1.Pointer() == rv2.Pointer() && rv1.Elem().NumField() > 0 {
				t.Errorf("%s.%s: two family instances share one op value", f1.Provider(), do)
			}
		}
	})

	for _, c := range s.Cases {
		c := c
		t.Run(c.Name, func(t *testing.T) {
			o, ok := f1.Ops()[c.Do]
			if !ok {
				t.Fatalf("family %s has no op %q", f1.Provider(), c.Do)
			}
			call := func() *op.Call {
				step := c.Step
				if step.StepID == "" {
					step = op.Step{RunUID: "uid-1", RunName: "run", Namespace: "default", StepName: "step", StepID: "step-1"}
				}
				p := c.Params()
				return &op.Call{Name: op.Name{Provider: f1.Provider(), Do: c.Do}, Path: "conformance." + c.Do,
					Op: o, Params: p, Class: o.Class(p), Step: step, Env: c.Env}
			}

			t.Run("cancelled context", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_, err := op.Direct.Run(ctx, call())
				if err == nil {
					t.Fatalf("a cancelled context must fail the call")
				}
				checkShape(t, err)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error should wrap context.Canceled, got %v", err)
				}
			})

			res1, err := op.Direct.Run(context.Background(), call())
			if c.Invalid {
				if err == nil {
					t.Fatalf("invalid params must fail the call")
				}
				checkShape(t, err)
				if !op.IsPermanent(err) {
					t.Errorf("invalid params must give a permanent error, got %v", err)
				}
				return
			}
			if err != nil {
				checkShape(t, err)
				t.Fatalf("call failed: %v", err)
			}
			if o.Class(call().Params) != op.Idempotent {
				return
			}
			t.Run("idempotent re-entry", func(t *testing.T) {
				res2, err := op.Direct.Run(context.Background(), call())
				if err != nil {
					t.Fatalf("second call failed: %v", err)
				}
				a, b := res1.Returns, res2.Returns
				if c.Normalize != nil {
					a, b = c.Normalize(a), c.Normalize(b)
				}
				if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(res1.Stop, res2.Stop) {
					t.Errorf("idempotent op returned different results on re-entry:\n first: %#v\nsecond: %#v", a, b)
				}
			})
		})
	}
}

func checkShape(t *testing.T, err error) {
	t.Helper()
	var e *op.Error
	if !errors.As(err, &e) {
		t.Errorf("error is not an *op.Error: %T %v", err, err)
		return
	}
	if e.Op.Provider == "" || e.Op.Do == "" || e.Path == "" {
		t.Errorf("op error lacks op name or path: %+v", e)
	}
}
