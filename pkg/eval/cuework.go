package eval

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// All CUE work of the evaluator goes through withCUE; this file is its
// boundary. Inside it, work holds a shard's lock, is timed from the moment
// it holds the lock, and a panic becomes an error.

var errTimeout = errors.New("evaluation timed out")

// maxShardLosses bounds how often one piece of work moves to a replacement
// shard because the one it waited for was abandoned under it.
const maxShardLosses = 8

// withCUE runs fn holding sh's lock. Only fn's own running time counts
// against EvalTimeout, never the wait for the lock. When fn overruns or
// panics, sh is abandoned and a fresh shard takes its slot: a goroutine
// cannot be stopped, and a panic may have left the CUE context half
// updated. It returns nil, errTimeout, a *panicError, errShardLost (sh was
// abandoned while the caller waited for it) or ctx's error.
func (e *Evaluator) withCUE(ctx context.Context, slot int, sh *shard, fn func()) error {
	if err := sh.acquire(ctx); err != nil {
		return err
	}
	// run does fn and then hands the shard on: replaced after a panic (its
	// context may be half updated) or once it has compiled enough.
	run := func() error {
		defer sh.release()
		err := catch(fn)
		switch {
		case err != nil:
			e.replace(slot, sh, true)
		case sh.full():
			e.replace(slot, sh, false)
		}
		return err
	}
	if e.opts.Unbounded {
		return run()
	}
	done := make(chan error, 1)
	go func() { done <- run() }()
	t := time.NewTimer(e.opts.EvalTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		e.replace(slot, sh, true)
		return errTimeout
	}
}

// withAnyShard runs fn, which keeps no CUE values, on the next shard with
// withCUE, on another one if that shard is abandoned while it waits.
func (e *Evaluator) withAnyShard(ctx context.Context, fn func(sh *shard)) error {
	for lost := 0; ; lost++ {
		slot, sh := e.shard()
		err := e.withCUE(ctx, slot, sh, func() { fn(sh) })
		if errors.Is(err, errShardLost) && lost < maxShardLosses {
			continue
		}
		return err
	}
}

// stretchError says, after prefix, how a stretch of CUE work that withCUE
// ran failed: out of time, a caught panic, or another error.
func (e *Evaluator) stretchError(prefix string, err error) error {
	var perr *panicError
	switch {
	case errors.Is(err, errTimeout):
		return fmt.Errorf("%sevaluation did not finish within %s", prefix, e.opts.EvalTimeout)
	case errors.As(err, &perr):
		return fmt.Errorf("%sCUE failed: %v", prefix, perr)
	}
	return fmt.Errorf("%s%v", prefix, err)
}

// panicError is a panic caught at the evaluator's boundary: a bug in CUE
// (or an op) that some input triggers. It must not take the process down.
type panicError struct {
	value any
	// at is the function that panicked.
	at    string
	stack []byte
}

func (p *panicError) Error() string {
	if p.at == "" {
		return fmt.Sprintf("internal error: %v", p.value)
	}
	return fmt.Sprintf("internal error in %s: %v", p.at, p.value)
}

// catch runs fn and returns its panic, if any, as a *panicError.
func catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, at: panicSite(), stack: debug.Stack()}
		}
	}()
	fn()
	return nil
}

// panicSite names the innermost function outside the Go runtime on the
// panicking goroutine's stack, as seen from a deferred recover.
func panicSite() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && f.Function != "" {
			return fmt.Sprintf("%s (%s:%d)", f.Function, shortFile(f.File), f.Line)
		}
		if !more {
			return ""
		}
	}
}

func shortFile(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		if j := strings.LastIndex(path[:i], "/"); j >= 0 {
			return path[j+1:]
		}
	}
	return path
}
