package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// workerGCPercent is the worker's GOGC. A worker's live heap is small (its
// compiled templates) and nearly all it allocates is short-lived CUE
// garbage, so at the default of 100 it collects every few MiB: about a
// quarter of its CPU under `make load`. At 400 that cost falls by two
// thirds for ~10 MiB more RSS per worker; the memory limit still bounds
// the heap.
const workerGCPercent = 400

// WorkerOptions configure Serve.
type WorkerOptions struct {
	// Ops must know the same ops as the parent's Options.Ops: the worker
	// only finds calls and decodes their parameters; it never runs them.
	Ops op.Catalog
}

// Serve is a worker's main: it reads the parent's messages from in and
// writes its own to out until in closes. It is what `stepflow eval-worker`
// runs.
func Serve(in io.Reader, out io.Writer, opts WorkerOptions) error {
	c := newConn(in, out)
	m, err := c.receive()
	if err != nil {
		return fmt.Errorf("eval worker: reading hello: %w", err)
	}
	if m.Kind != kindHello || m.Hello == nil {
		return fmt.Errorf("eval worker: first message is %q, not hello", m.Kind)
	}
	if err := limitMemory(m.Hello.MemoryLimit); err != nil {
		return fmt.Errorf("eval worker: %w", err)
	}
	debug.SetGCPercent(workerGCPercent)
	// One session at a time does CUE work here: a second P would only run
	// the GC's idle mark workers and wake-ups, CPU the controller's other
	// workers could use.
	runtime.GOMAXPROCS(1)
	// One shard: the parent lets one session at a time do CUE work here.
	// Unbounded: the parent times the CUE work and kills this process
	// when it overruns; a timer of its own here would only cost.
	ev, err := eval.New(eval.Options{Ops: opts.Ops, Shards: 1, Unbounded: true})
	if err != nil {
		return err
	}
	w := &server{c: c, ev: ev, sessions: map[uint64]*workerSession{}, idle: make(chan func())}
	for {
		m, err := c.receive()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("eval worker: reading: %w", err)
		}
		w.handle(m)
	}
}

// server is a worker's side of the sessions.
type server struct {
	c        *conn
	ev       *eval.Evaluator
	mu       sync.Mutex
	sessions map[uint64]*workerSession
	// idle hands a session's work to a goroutine that has finished
	// another's (unbuffered: only to one waiting for it).
	idle chan func()
}

// spawn runs f on an idle session goroutine, or a new one. CUE's
// evaluation recurses deeply: a goroutine that has done it once has the
// stack for it, where a new one grows its stack again, copying it each
// time it doubles.
func (w *server) spawn(f func()) {
	select {
	case w.idle <- f:
	default:
		go func() {
			for {
				f()
				f = <-w.idle
			}
		}()
	}
}

type workerSession struct {
	id     uint64
	cancel context.CancelFunc
	next   atomic.Uint64
	mu     sync.Mutex
	calls  map[uint64]chan *opResult
}

func (w *server) handle(m *message) {
	switch m.Kind {
	case kindEval, kindCond, kindCheck, kindSchema, kindParams:
		ctx, cancel := context.WithCancel(context.Background())
		s := &workerSession{id: m.ID, cancel: cancel, calls: map[uint64]chan *opResult{}}
		w.mu.Lock()
		w.sessions[m.ID] = s
		w.mu.Unlock()
		w.spawn(func() {
			done := w.run(ctx, s, m)
			w.mu.Lock()
			delete(w.sessions, m.ID)
			w.mu.Unlock()
			cancel()
			if err := w.c.send(&message{Kind: kindDone, ID: m.ID, Done: done}); errors.As(err, new(*encodeError)) {
				_ = w.c.send(&message{Kind: kindDone, ID: m.ID, Done: &sessionDone{Phase: eval.Failed, Reason: eval.ReasonTemplate,
					Err: err.Error(), Message: "eval worker: the outcome is not plain data: " + err.Error()}})
			}
		})
	case kindResult:
		if s := w.session(m.ID); s != nil && m.Result != nil {
			s.mu.Lock()
			ch := s.calls[m.Call]
			delete(s.calls, m.Call)
			s.mu.Unlock()
			if ch != nil {
				ch <- m.Result
			}
		}
	case kindCancel:
		if s := w.session(m.ID); s != nil {
			s.cancel()
		}
	}
}

func (w *server) session(id uint64) *workerSession {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessions[id]
}

// run does one session's work and returns its end.
func (w *server) run(ctx context.Context, s *workerSession, m *message) *sessionDone {
	switch {
	case m.Kind == kindCond && m.Cond != nil:
		b, err := w.ev.Condition(m.Cond.Expr, m.Cond.Scope)
		d := &sessionDone{Bool: b}
		if err != nil {
			d.Err = err.Error()
		}
		return d
	case m.Kind == kindCheck && m.Check != nil:
		d := &sessionDone{}
		if err := w.ev.Check(*m.Check); err != nil {
			d.Err = err.Error()
		}
		return d
	case m.Kind == kindSchema && m.Schema != nil:
		return schemaDone(w.ev.ParameterSchema(*m.Schema))
	case m.Kind == kindParams:
		return paramsDone(w.ev.ValidateParameters(m.Params))
	case m.Kind == kindEval && m.Eval != nil:
		r := m.Eval
		req := eval.Request{
			Definition: r.Definition,
			Context:    r.Context,
			Step:       r.Step,
			Runner:     proxy{w: w, s: s},
			Outputs:    r.Outputs,
			Data:       r.Data,
		}
		switch {
		case r.Parameters != nil:
			req.Parameters = r.Parameters
		case len(r.ParametersJSON) > 0:
			req.Parameters = json.RawMessage(r.ParametersJSON)
		}
		return doneOf(w.ev.Evaluate(ctx, req))
	}
	return &sessionDone{Phase: eval.Failed, Reason: eval.ReasonTemplate, Err: "malformed request", Message: "eval worker: malformed request"}
}

func doneOf(out eval.Outcome) *sessionDone {
	d := &sessionDone{Phase: out.Phase, Reason: out.Reason, Message: out.Message, SuspendFor: out.SuspendFor, Data: out.Data}
	for _, c := range out.Calls {
		d.Calls = append(d.Calls, callRecord{Op: c.Op, Path: c.Path, Class: c.Class, Stop: c.Stop})
	}
	if out.Err != nil {
		d.ErrCall, d.Err = callOf(out.Err), out.Err.Error()
	}
	for _, o := range out.Outputs {
		r := outputResult{Value: o.Value}
		if o.Err != nil {
			r.Err = o.Err.Error()
		}
		d.Outputs = append(d.Outputs, r)
	}
	return d
}

// proxy is the worker evaluator's Runner: it sends each op call to the
// parent and waits for its result.
type proxy struct {
	w *server
	s *workerSession
}

func (p proxy) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	// A pure op is computation, like the CUE around it: it runs here. Not
	// when the template made it an Effect, whose record the journal keeps.
	if _, ok := call.Op.(op.Pure); ok && call.Class != op.Effect {
		return op.Direct.Run(ctx, call)
	}
	params, err := encMode.Marshal(call.Params)
	if err != nil {
		return op.Result{}, op.Permanent(fmt.Errorf("op %s at %q: encoding its parameters: %v", call.Name, call.Path, err))
	}
	id := p.s.next.Add(1)
	ch := make(chan *opResult, 1)
	p.s.mu.Lock()
	p.s.calls[id] = ch
	p.s.mu.Unlock()
	err = p.w.c.send(&message{Kind: kindCall, ID: p.s.id, Call: id,
		OpCall: &opCall{Name: call.Name, Path: call.Path, Class: call.Class, Params: params}})
	if err != nil {
		return op.Result{}, fmt.Errorf("op %s at %q: %v", call.Name, call.Path, err)
	}
	select {
	case r := <-ch:
		res := op.Result{Returns: r.Returns, Stop: r.Stop, Message: r.Message}
		return res, r.opError(id)
	case <-ctx.Done():
		p.s.mu.Lock()
		delete(p.s.calls, id)
		p.s.mu.Unlock()
		return op.Result{}, fmt.Errorf("op %s at %q: %w", call.Name, call.Path, ctx.Err())
	}
}
