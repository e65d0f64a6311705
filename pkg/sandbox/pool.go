package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// Options configure a Pool.
type Options struct {
	// Ops resolves the op calls the workers send: it must know the same
	// ops as the workers' WorkerOptions.Ops. Required.
	Ops op.Catalog
	// Binary is the worker executable (default os.Executable()), started
	// with the argument DefaultWorkerCommand and the parent's environment
	// plus Env.
	Binary string
	Env    []string
	// Workers is the most worker processes at once (default GOMAXPROCS).
	// The pool runs one while it keeps up, and starts another only when
	// every worker it has is held by one evaluation for longer than
	// BusyAfter (a slow template, or a runaway before its bound stops it),
	// so that nobody waits behind it. A worker beyond the first that has
	// had nothing to do for IdleAfter is stopped.
	Workers int
	// BusyAfter (default 1s: more than an evaluation takes, even on a
	// busy node) and IdleAfter (default 1m): see Workers.
	BusyAfter, IdleAfter time.Duration
	// MemoryLimit bounds how far each worker's address space may grow
	// beyond its size at start, in bytes (default DefaultMemoryLimit;
	// negative: no bound).
	MemoryLimit int64
	// EvalTimeout bounds the CUE time of one session (default 10s).
	EvalTimeout time.Duration
	// MaxInterruptions is how many times in a row one step attempt may be
	// interrupted by worker deaths before it fails (default 3).
	MaxInterruptions int
	// Stderr receives the workers' stderr, a line at a time with a
	// "eval-worker[pid]: " prefix (default os.Stderr).
	Stderr io.Writer
}

// DefaultWorkerCommand is the subcommand of the binary that runs Serve.
const DefaultWorkerCommand = "eval-worker"

// DefaultMemoryLimit is the default growth bound of a worker's address
// space: far above what a step needs, far below what a runaway takes.
const DefaultMemoryLimit = 1 << 30

// Pool evaluates in worker processes. It is safe for concurrent use and
// satisfies what pkg/engine and the definition reconciler need.
type Pool struct {
	opts   Options
	nextID atomic.Uint64
	mu     sync.Mutex
	// workers are the live workers, the first the longest-lived.
	workers      []*worker
	closed       bool
	stopRetiring chan struct{}
	// strikes counts the interruptions of each step attempt in a row.
	strikes map[string]int
	// templates gates the compiles of templates not yet known to stay
	// within the bounds (Check, ParameterSchema, ValidateParameters).
	templates templateGate
	// Stats, for tests and the log.
	started, killed, died atomic.Int64
}

// New starts the workers. It fails if the first one cannot be started.
func New(opts Options) (*Pool, error) {
	if opts.Ops == nil {
		return nil, errors.New("sandbox: Options.Ops is required")
	}
	if opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: finding the worker binary: %w", err)
		}
		opts.Binary = exe
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.MemoryLimit < 0 {
		opts.MemoryLimit = 0
	}
	if opts.EvalTimeout <= 0 {
		opts.EvalTimeout = 10 * time.Second
	}
	if opts.BusyAfter <= 0 {
		opts.BusyAfter = time.Second
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = time.Minute
	}
	if opts.MaxInterruptions <= 0 {
		opts.MaxInterruptions = 3
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	p := &Pool{opts: opts, strikes: map[string]int{}, stopRetiring: make(chan struct{})}
	w, err := p.start()
	if err != nil {
		return nil, err
	}
	p.workers = []*worker{w}
	go p.retireIdle()
	return p, nil
}

// Close stops the workers. Sessions still open end Interrupted.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		close(p.stopRetiring)
	}
	p.closed = true
	ws := append([]*worker(nil), p.workers...)
	p.mu.Unlock()
	for _, w := range ws {
		if w != nil {
			w.stop()
		}
	}
	return nil
}

// Stats are counts of worker processes over the pool's life.
type Stats struct {
	Started int64 // workers started, replacements included
	Killed  int64 // killed for a session's overrun
	Died    int64 // exited on their own (memory limit, crash)
}

// Stats returns the pool's counts.
func (p *Pool) Stats() Stats {
	return Stats{Started: p.started.Load(), Killed: p.killed.Load(), Died: p.died.Load()}
}

// PIDs lists the live workers' process ids.
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, w := range p.workers {
		if w != nil && !w.isDead() {
			out = append(out, w.cmd.Process.Pid)
		}
	}
	return out
}

// pick returns the worker for a new session: of those not held long by
// one evaluation, the one with the fewest sessions. When every worker is
// held long, it starts another, up to Options.Workers; at that bound it
// takes the one with the fewest sessions all the same.
func (p *Pool) pick() (*worker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("the evaluator pool is closed")
	}
	now := time.Now()
	var best, least *worker
	live := 0
	for _, w := range p.workers {
		if w.isDead() {
			continue
		}
		live++
		if least == nil || w.load() < least.load() {
			least = w
		}
		if w.heldFor(now) < p.opts.BusyAfter && (best == nil || w.load() < best.load()) {
			best = w
		}
	}
	var err error
	if best == nil && live < p.opts.Workers {
		if best, err = p.start(); err == nil {
			p.workers = append(p.workers, best)
		}
	}
	if best == nil {
		best = least
	}
	if best == nil {
		return nil, fmt.Errorf("no evaluator worker could be started: %w", err)
	}
	best.used(now)
	return best, nil
}

// canMove says whether a session waiting for w, held long, would find
// another worker: one not held long, or room for a spare.
func (p *Pool) canMove(w *worker, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := 0
	for _, x := range p.workers {
		if x.isDead() {
			continue
		}
		live++
		if x != w && x.heldFor(now) < p.opts.BusyAfter {
			return true
		}
	}
	return live < p.opts.Workers
}

// replace forgets dead w and, when it was the last, starts another
// unless the pool closed, so that one worker is always ready.
func (p *Pool) replace(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers = slices.DeleteFunc(p.workers, func(x *worker) bool { return x == w })
	if p.closed || len(p.workers) > 0 {
		return
	}
	if nw, err := p.start(); err == nil {
		p.workers = append(p.workers, nw)
	} else {
		fmt.Fprintf(p.opts.Stderr, "sandbox: replacing evaluator worker: %v\n", err)
	}
}

// retireIdle stops the workers beyond the first that have had no session
// for Options.IdleAfter, until the pool closes.
func (p *Pool) retireIdle() {
	t := time.NewTicker(max(p.opts.IdleAfter/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stopRetiring:
			return
		case now := <-t.C:
			p.mu.Lock()
			for i := len(p.workers) - 1; i >= 1; i-- {
				if w := p.workers[i]; w.idleFor(now) >= p.opts.IdleAfter {
					p.workers = slices.Delete(p.workers, i, i+1)
					w.retire()
				}
			}
			p.mu.Unlock()
		}
	}
}

// strike counts an interruption of key and reports whether it was one
// too many; forget forgets key after a session of it ended normally.
func (p *Pool) strike(key string) (n int, tooMany bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.strikes[key]++
	n = p.strikes[key]
	if n >= p.opts.MaxInterruptions {
		delete(p.strikes, key)
		return n, true
	}
	if len(p.strikes) > 10000 { // attempts that never came back
		clear(p.strikes)
	}
	return n, false
}

func (p *Pool) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.strikes, key)
}

// fate is how a session ended.
type fate int

const (
	fateDone        fate = iota // the worker sent done
	fateTimeout                 // its worker was killed for its overrun
	fateMemory                  // its worker died of its memory limit while it held the token
	fateInterrupted             // its worker died for another reason
	fateCancelled               // the caller gave up
	fateNoWorker                // no worker to be had
	fateUnsendable              // the request does not encode: nothing was sent
)

// ending is what a session's caller receives.
type ending struct {
	fate fate
	done *sessionDone
	// why is the dead worker's exit, or the error behind fateNoWorker.
	why string
}

// session is the parent's side of one Evaluate, Condition or Check.
type session struct {
	id     uint64
	w      *worker
	ctx    context.Context
	runner op.Runner
	step   op.Step
	env    op.Env
	end    chan ending // buffered 1; the first ending wins
	// calls hands an op call to the session's own goroutine when it is
	// waiting (unbuffered): the caller's goroutine, whose stack has grown
	// already, runs it. A call that comes while it is busy gets its own.
	calls chan *message
	// used is the CUE time spent so far; guarded by w.mu.
	used time.Duration

	// inflight counts the op calls running in the parent. The session
	// ends only after them, even when its worker died first: an effect
	// still running must have its journal record before the attempt is
	// evaluated again, or the next evaluation would send it again.
	inflight sync.WaitGroup

	// tokenMu lets one call of the session at a time take the token back
	// (takeTokenBack).
	tokenMu sync.Mutex

	mu          sync.Mutex
	outstanding int
	// errs are the real errors of the op calls that failed, by call id,
	// so the outcome's Err is the runner's own error (journal.ErrSave ...).
	errs map[uint64]error
}

func (s *session) finish(e ending) {
	select {
	case s.end <- e:
	default:
	}
}

// maxMoves bounds how often a session that has not started goes to
// another worker (its own died, or is held long by another evaluation).
const maxMoves = 8

// open starts a session of m on a worker and waits for its end. A
// session that has not started on its worker when that worker dies, or
// that would wait behind an evaluation held long there, starts over on
// another: it has cost nothing yet, and is not interrupted.
func (p *Pool) open(ctx context.Context, m *message, runner op.Runner, step op.Step, env op.Env) (*session, ending) {
	for moves := 0; ; moves++ {
		s := &session{id: p.nextID.Add(1), ctx: ctx, runner: runner, step: step, env: env,
			end: make(chan ending, 1), calls: make(chan *message), errs: map[uint64]error{}}
		m.ID = s.id
		req, err := encode(m)
		if err != nil {
			return s, ending{fate: fateUnsendable, why: err.Error()}
		}
		w, err := p.pick()
		if err != nil {
			return s, ending{fate: fateNoWorker, why: err.Error()}
		}
		s.w = w
		if !w.register(s) {
			if moves < maxMoves {
				continue
			}
			return s, ending{fate: fateInterrupted, why: "the worker exited before the evaluation started"}
		}
		// s stays registered until the worker ends it (or dies), even when
		// the caller gives up first, so its token is always released.
		if err := w.acquire(ctx, s, moves < maxMoves); err != nil {
			w.unregister(s)
			switch {
			case ctx.Err() != nil:
				return s, ending{fate: fateCancelled, why: ctx.Err().Error()}
			case moves < maxMoves:
				continue // errMove, or errDead before it started
			}
			return s, ending{fate: fateInterrupted, why: err.Error()}
		}
		if err := w.conn.write(req); err != nil {
			w.release(s)
			w.kill() // a broken pipe: the worker is gone or going
			return s, <-s.end
		}
		for {
			select {
			case e := <-s.end:
				s.inflight.Wait()
				return s, e
			case m := <-s.calls:
				s.call(m)
			case <-ctx.Done():
				_ = w.conn.send(&message{Kind: kindCancel, ID: s.id})
				s.inflight.Wait() // their context is ctx: they end soon
				return s, ending{fate: fateCancelled, why: ctx.Err().Error()}
			}
		}
	}
}

// call runs one op call a worker sent for s, and sends back its result.
func (s *session) call(m *message) {
	defer s.inflight.Done()
	res, err := s.runOp(m)
	r := &opResult{Returns: res.Returns, Stop: res.Stop, Message: res.Message}
	if err != nil {
		r.Err, r.Permanent = err.Error(), op.IsPermanent(err)
	}
	s.mu.Lock()
	if err != nil {
		s.errs[m.Call] = err
	}
	s.outstanding--
	last := s.outstanding == 0
	s.mu.Unlock()
	if last && !s.takeTokenBack() {
		return // the worker died or the caller gave up: the session has ended
	}
	if err := s.w.conn.send(&message{Kind: kindResult, ID: s.id, Call: m.Call, Result: r}); errors.As(err, new(*encodeError)) {
		// Returns that are not plain data: the call fails, as it would
		// when its journal record did not encode.
		r = &opResult{Err: fmt.Sprintf("op %s at %q: its result is not plain data: %v", m.OpCall.Name, m.OpCall.Path, err), Permanent: true}
		_ = s.w.conn.send(&message{Kind: kindResult, ID: s.id, Call: m.Call, Result: r})
	}
}

// takeTokenBack gets the worker's CUE token for s before the result that
// leaves it no call outstanding is sent: with it the worker goes back to
// s's CUE work. Calls of one batch reach the parent one by one, so two of
// them can each have seen none outstanding when they finished (the first
// before the second was read): the one that comes second finds s holding
// the token already and keeps it, rather than waiting for s itself. A call
// of the batch read meanwhile hands the token back, so others do CUE work
// while it runs. It returns false when s has ended.
func (s *session) takeTokenBack() bool {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	if !s.w.holds(s) {
		if s.w.acquire(s.ctx, s, false) != nil {
			return false
		}
	}
	s.mu.Lock()
	again := s.outstanding > 0
	s.mu.Unlock()
	if again {
		s.w.release(s)
	}
	return true
}

func (s *session) runOp(m *message) (op.Result, error) {
	c := m.OpCall
	if c == nil {
		return op.Result{}, op.Permanentf("eval worker sent an empty op call")
	}
	o, ok := s.w.pool.opts.Ops.Lookup(c.Name)
	if !ok {
		return op.Result{}, op.Permanentf("op %s at %q: not known to the controller", c.Name, c.Path)
	}
	params, err := decodeParams(o, c.Params)
	if err != nil {
		return op.Result{}, op.Permanentf("op %s at %q: decoding its parameters: %v", c.Name, c.Path, err)
	}
	runner := s.runner
	if runner == nil {
		runner = op.Direct
	}
	return runner.Run(s.ctx, &op.Call{Name: c.Name, Path: c.Path, Op: o, Params: params, Class: c.Class, Step: s.step, Env: s.env})
}

// retries bounds how often Condition and Check start over on another
// worker after an interruption.
const retries = 3

// Evaluate runs one evaluation of a step in a worker; see the package doc
// for the outcomes that are the pool's own.
func (p *Pool) Evaluate(ctx context.Context, req eval.Request) eval.Outcome {
	where := func() string { return eval.Where(req.Step.StepName, req.Definition.Name) }
	r := &evalRequest{Definition: req.Definition,
		Context: req.Context, Step: req.Step, Outputs: req.Outputs, Data: req.Data}
	switch x := req.Parameters.(type) {
	case nil:
	case json.RawMessage:
		r.ParametersJSON = x
	case []byte:
		r.ParametersJSON = x
	default:
		r.Parameters = x
	}
	key := req.Step.StepID
	if key == "" {
		key = req.Step.RunUID + "/" + req.Step.StepName + "/" + req.Definition.Name
	}
	s, e := p.open(ctx, &message{Kind: kindEval, Eval: r}, req.Runner, req.Step, req.Env)
	switch e.fate {
	case fateDone:
		p.forget(key)
		return s.outcome(e.done)
	case fateTimeout:
		p.forget(key)
		return eval.Outcome{Phase: eval.Failed, Reason: eval.ReasonTimeout,
			Message: where() + fmt.Sprintf("CUE evaluation did not finish within %s; its worker process was stopped", p.opts.EvalTimeout)}
	case fateMemory:
		p.forget(key)
		return eval.Outcome{Phase: eval.Failed, Reason: eval.ReasonMemory,
			Message: where() + fmt.Sprintf("CUE evaluation went over the memory limit of %d MiB; its worker process died (%s)", p.opts.MemoryLimit>>20, e.why)}
	case fateInterrupted:
		if n, tooMany := p.strike(key); tooMany {
			return eval.Outcome{Phase: eval.Failed, Reason: eval.ReasonInterrupted,
				Message: where() + fmt.Sprintf("the evaluator worker died %d times while evaluating this attempt (last: %s)", n, e.why)}
		}
		return eval.Outcome{Phase: eval.Interrupted, Reason: eval.ReasonInterrupted,
			Message: where() + "evaluation interrupted, its worker process died (" + e.why + "); evaluating again"}
	case fateCancelled:
		return eval.Outcome{Phase: eval.Broken, Reason: eval.ReasonOp, Message: where() + "evaluation cancelled: " + e.why}
	case fateUnsendable:
		return eval.Outcome{Phase: eval.Failed, Reason: eval.ReasonParameter,
			Message: where() + "parameters or context are not plain data: " + e.why}
	default: // no worker to be had: not the step's trouble, and no strike
		return eval.Outcome{Phase: eval.Interrupted, Reason: eval.ReasonInterrupted,
			Message: where() + e.why + "; evaluating again"}
	}
}

// outcome turns a worker's done into the evaluation's outcome.
func (s *session) outcome(d *sessionDone) eval.Outcome {
	out := eval.Outcome{Phase: d.Phase, Reason: d.Reason, Message: d.Message, SuspendFor: d.SuspendFor, Data: d.Data}
	for _, c := range d.Calls {
		out.Calls = append(out.Calls, eval.CallRecord{Op: c.Op, Path: c.Path, Class: c.Class, Stop: c.Stop})
	}
	if d.Err != "" {
		s.mu.Lock()
		out.Err = s.errs[d.ErrCall]
		s.mu.Unlock()
		if out.Err == nil {
			out.Err = errors.New(d.Err)
		}
	}
	for _, o := range d.Outputs {
		v := eval.OutputValue{Value: o.Value}
		if o.Err != "" {
			v.Err = errors.New(o.Err)
		}
		out.Outputs = append(out.Outputs, v)
	}
	return out
}

// Condition evaluates a step's if in a worker.
func (p *Pool) Condition(expr string, scope map[string]any) (bool, error) {
	var last string
	for i := 0; i < retries; i++ {
		_, e := p.open(context.Background(), &message{Kind: kindCond, Cond: &condRequest{Expr: expr, Scope: scope}}, nil, op.Step{}, op.Env{})
		switch e.fate {
		case fateDone:
			if e.done.Err != "" {
				return false, errors.New(e.done.Err)
			}
			return e.done.Bool, nil
		case fateUnsendable:
			return false, fmt.Errorf("if %q: its scope is not plain data: %s", expr, e.why)
		case fateTimeout:
			return false, &eval.OverrunError{Reason: eval.ReasonTimeout,
				Message: fmt.Sprintf("if %q: evaluation did not finish within %s", expr, p.opts.EvalTimeout)}
		case fateMemory:
			return false, &eval.OverrunError{Reason: eval.ReasonMemory,
				Message: fmt.Sprintf("if %q: evaluation went over the memory limit of %d MiB", expr, p.opts.MemoryLimit>>20)}
		}
		last = e.why
	}
	return false, fmt.Errorf("if %q: %w: %s", expr, eval.ErrInterrupted, last)
}

// Check compiles a definition in a worker, as eval.Evaluator.Check does.
// A compile over its time or memory bound is an *eval.OverrunError.
func (p *Pool) Check(def eval.Definition) (err error) {
	known, done := p.templates.enter(def)
	if known != nil {
		return known
	}
	defer func() { done(err) }()
	var last string
	for i := 0; i < retries; i++ {
		_, e := p.open(context.Background(), &message{Kind: kindCheck, Check: &def}, nil, op.Step{}, op.Env{})
		switch e.fate {
		case fateDone:
			if e.done.Err != "" {
				return errors.New(e.done.Err)
			}
			return nil
		case fateUnsendable:
			return fmt.Errorf("definition %q: %s", def.Name, e.why)
		case fateTimeout:
			return &eval.OverrunError{Reason: eval.ReasonTimeout,
				Message: fmt.Sprintf("definition %q: compiling did not finish within %s; its worker process was stopped", def.Name, p.opts.EvalTimeout)}
		case fateMemory:
			return &eval.OverrunError{Reason: eval.ReasonMemory,
				Message: fmt.Sprintf("definition %q: compiling went over the memory limit of %d MiB; its worker process died", def.Name, p.opts.MemoryLimit>>20)}
		}
		last = e.why
	}
	return fmt.Errorf("definition %q: %w: %s", def.Name, eval.ErrInterrupted, last)
}
