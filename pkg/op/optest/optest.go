// Package optest is the conformance suite every op family runs: each op
// decodes into a fresh params value, honours context cancellation, returns
// errors in the one shape, keeps no state shared between two family
// instances, and an idempotent call run twice returns the same thing.
//
// The checks call the ops themselves, not through op.Direct: Direct
// returns before calling an op whose context is already done, and puts
// any error into an *op.Error, so through it an op that ignores its
// context or mangles its errors would pass. Cancellation is checked on a
// call that blocks (Suite.Blocking, e.g. against BlockingServer): its
// context is cancelled while the op is in it.
//
// The one shape of an op's own error: it keeps its cause (a cancelled call
// wraps context.Canceled), says by op.Permanent whether a retry can help
// (invalid params: permanent; a cancelled call: not, since the step is
// only interrupted), and an *op.Error in it names this call, not another.
package optest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

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

// Blocking is a call that does not return until its context ends, such
// as one to a BlockingServer: the suite cancels it while it is in flight.
type Blocking struct {
	Name string
	// New, if set, builds the family for this call (e.g. with a client of
	// a slow API server); default Suite.New.
	New func() op.Family
	Do  string
	// Params builds the op's params.
	Params func() any
	// InFlight receives when the call has reached the point where it
	// blocks (the server got the request).
	InFlight <-chan struct{}
}

// Suite is a family under test.
type Suite struct {
	// New builds a fresh family instance with its dependencies.
	New   func() op.Family
	Cases []Case
	// Blocking are the calls that check cancellation. A family whose ops
	// can block (network, API server) must have at least one.
	Blocking []Blocking
	// Patience is how long a cancelled call may take to return
	// (default 10s).
	Patience time.Duration
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

	for _, b := range s.Blocking {
		t.Run(b.Name+"/honours cancellation", func(t *testing.T) { cancellation(t, s, b) })
	}

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

			first := call()
			res1, err := o.Run(context.Background(), first)
			if c.Invalid {
				if err == nil {
					t.Fatalf("invalid params must fail the call")
				}
				checkShape(t, first, err)
				if !op.IsPermanent(err) {
					t.Errorf("invalid params must give a permanent error, got %v", err)
				}
				return
			}
			if err != nil {
				checkShape(t, first, err)
				t.Fatalf("call failed: %v", err)
			}
			if o.Class(call().Params) != op.Idempotent {
				return
			}
			t.Run("idempotent re-entry", func(t *testing.T) {
				res2, err := o.Run(context.Background(), call())
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

// cancellation runs b, cancels its context once it is in flight, and
// checks that the op returns within the patience with a cancellation in
// the one shape.
func cancellation(t *testing.T, s Suite, b Blocking) {
	t.Helper()
	newFamily := s.New
	if b.New != nil {
		newFamily = b.New
	}
	f := newFamily()
	o, ok := f.Ops()[b.Do]
	if !ok {
		t.Fatalf("family %s has no op %q", f.Provider(), b.Do)
	}
	p := b.Params()
	call := &op.Call{Name: op.Name{Provider: f.Provider(), Do: b.Do}, Path: "conformance." + b.Do, Op: o, Params: p,
		Class: o.Class(p), Step: op.Step{RunUID: "uid-1", RunName: "run", Namespace: "default", StepName: "step", StepID: "step-1"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := o.Run(ctx, call)
		done <- err
	}()
	patience := s.Patience
	if patience <= 0 {
		patience = 10 * time.Second
	}
	select {
	case <-b.InFlight:
	case err := <-done:
		t.Fatalf("the call returned before it blocked (%v); the case does not test cancellation", err)
	case <-time.After(patience):
		t.Fatalf("the call did not reach its blocking point within %s", patience)
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(patience):
		t.Fatalf("%s.%s did not return within %s of its context being cancelled: it does not honour cancellation", f.Provider(), b.Do, patience)
	}
	if err == nil {
		t.Fatalf("%s.%s returned no error from a call whose context was cancelled", f.Provider(), b.Do)
	}
	checkShape(t, call, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("the error of a cancelled call must wrap context.Canceled, got %v", err)
	}
	if op.IsPermanent(err) {
		t.Errorf("a cancelled call must not be a permanent error (the step was interrupted, not wrong): %v", err)
	}
}

// checkShape checks an op's own error: it says something, and an
// *op.Error in it names this call (op.Direct keeps an *op.Error it finds,
// so another call's would reach the step as this one's).
func checkShape(t *testing.T, call *op.Call, err error) {
	t.Helper()
	if err.Error() == "" {
		t.Errorf("%s: the error has no message", call.Name)
	}
	var own *op.Error
	if errors.As(err, &own) && (own.Op != call.Name || own.Path != call.Path) {
		t.Errorf("%s at %q returned the error of another call (%s at %q): %v", call.Name, call.Path, own.Op, own.Path, err)
	}
}

// BlockingServer starts an HTTP server whose every request blocks until
// the request's context ends (or the test does), and signals on the
// returned channel each time a request arrives. Against it an op's call
// blocks until it is cancelled, as against a slow endpoint or API server.
func BlockingServer(t testing.TB) (url string, inFlight <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 64)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-done:
			http.Error(w, "the test ended", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv.URL, arrived
}
