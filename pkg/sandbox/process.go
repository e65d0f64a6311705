package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

var errDead = errors.New("the evaluator worker exited")

// worker is the parent's handle on one worker process.
type worker struct {
	pool *Pool
	cmd  *exec.Cmd
	conn *conn
	// stdin is the parent's end of the worker's stdin: closing it ends
	// the worker.
	stdin io.Closer
	// token is held by the one session doing CUE work in the worker.
	token chan struct{}
	dead  chan struct{} // closed once the process is gone

	mu       sync.Mutex
	sessions map[uint64]*session
	exited   bool
	holder   *session
	since    time.Time
	timer    *time.Timer
	// gen counts acquisitions, so a stale timer kills nobody.
	gen uint64
	// last is when a session last came or went; retired says the pool
	// stopped the worker for having nothing to do.
	last    time.Time
	retired bool
	// overrun is the session the worker was killed for.
	overrun *session
	// fatal is the worker's "fatal error" line, if it printed one; oom
	// says it ran out of memory.
	fatal string
	oom   bool
}

// start starts one worker process and its reader.
func (p *Pool) start() (*worker, error) {
	cmd := exec.Command(p.opts.Binary, DefaultWorkerCommand)
	// A worker that dies prints one goroutine's stack, not thousands of
	// lines into the controller's log.
	cmd.Env = append(append(cmd.Environ(), "GOTRACEBACK=single"), p.opts.Env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting evaluator worker %s: %w", p.opts.Binary, err)
	}
	p.started.Add(1)
	w := &worker{pool: p, cmd: cmd, conn: newConn(stdout, stdin), stdin: stdin, token: make(chan struct{}, 1),
		dead: make(chan struct{}), sessions: map[uint64]*session{}, last: time.Now()}
	logged := make(chan struct{})
	go w.logStderr(bufio.NewScanner(stderr), logged)
	go w.read(logged)
	if err := w.conn.send(&message{Kind: kindHello, Hello: &hello{MemoryLimit: p.opts.MemoryLimit}}); err != nil {
		w.kill()
		return nil, fmt.Errorf("starting evaluator worker: %w", err)
	}
	return w, nil
}

func (w *worker) logStderr(sc *bufio.Scanner, done chan<- struct{}) {
	defer close(done)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := fmt.Sprintf("eval-worker[%d]: ", w.cmd.Process.Pid)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "fatal error:") || strings.Contains(line, "out of memory") {
			w.mu.Lock()
			if w.fatal == "" {
				w.fatal = line
			}
			w.oom = w.oom || strings.Contains(line, "out of memory") || strings.Contains(line, "cannot allocate memory")
			w.mu.Unlock()
		}
		fmt.Fprintln(w.pool.opts.Stderr, prefix+line)
	}
}

// read dispatches the worker's messages until its stdout closes, then
// ends its sessions.
func (w *worker) read(logged <-chan struct{}) {
	for {
		m, err := w.conn.receive()
		if err != nil {
			break
		}
		w.mu.Lock()
		s := w.sessions[m.ID]
		w.mu.Unlock()
		if s == nil {
			continue // a session the caller gave up on
		}
		switch m.Kind {
		case kindCall:
			s.mu.Lock()
			s.outstanding++
			s.mu.Unlock()
			s.inflight.Add(1)
			w.release(s) // out of CUE while the parent runs the call
			select {
			case s.calls <- m:
			default:
				go s.call(m)
			}
		case kindDone:
			w.release(s)
			w.unregister(s)
			if m.Done == nil {
				m.Done = &sessionDone{}
			}
			s.finish(ending{fate: fateDone, done: m.Done})
		}
	}
	w.kill()
	<-logged
	err := w.cmd.Wait()
	w.died(err)
}

// died ends the sessions of a worker whose process is gone and has the
// pool replace it.
func (w *worker) died(err error) {
	w.mu.Lock()
	w.exited = true
	close(w.dead)
	if w.timer != nil {
		w.timer.Stop()
	}
	why := "exit"
	if err != nil {
		why = err.Error()
	}
	if w.fatal != "" {
		why += ": " + w.fatal
	}
	oom, retired := w.oom, w.retired
	holder, overrun := w.holder, w.overrun
	sessions := w.sessions
	w.sessions = map[uint64]*session{}
	w.mu.Unlock()
	switch {
	case overrun != nil:
		w.pool.killed.Add(1)
	case !w.pool.isClosed() && !retired:
		w.pool.died.Add(1)
	}
	for _, s := range sessions {
		switch {
		case s == overrun:
			s.finish(ending{fate: fateTimeout, why: why})
		case oom && s == holder:
			s.finish(ending{fate: fateMemory, why: why})
		case overrun != nil:
			s.finish(ending{fate: fateInterrupted, why: "stopped for another evaluation's overrun"})
		default:
			s.finish(ending{fate: fateInterrupted, why: why})
		}
	}
	go w.pool.replace(w)
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (w *worker) isDead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exited || w.overrun != nil
}

func (w *worker) load() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions)
}

// heldFor is how long the session holding the token has held it.
func (w *worker) heldFor(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holder == nil {
		return 0
	}
	return now.Sub(w.since)
}

// used notes that a session was given to w.
func (w *worker) used(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = now
}

// idleFor is how long w has had no session.
func (w *worker) idleFor(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.sessions) > 0 {
		return 0
	}
	return now.Sub(w.last)
}

// retire ends a worker with no sessions: it exits when its stdin closes.
func (w *worker) retire() {
	w.mu.Lock()
	w.retired = true
	w.mu.Unlock()
	_ = w.stdin.Close()
}

func (w *worker) register(s *session) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.exited {
		return false
	}
	w.sessions[s.id] = s
	return true
}

func (w *worker) unregister(s *session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.sessions, s.id)
	w.last = time.Now()
}

// errMove says a session that has not started on its worker would wait
// behind an evaluation held long, and can go to another.
var errMove = errors.New("the evaluator worker is held by a long evaluation")

// acquire waits for the worker's CUE token for s and starts s's clock.
// With movable set, it gives up with errMove when it has waited
// Options.BusyAfter while the holder has held it that long, and the pool
// has another worker to offer.
func (w *worker) acquire(ctx context.Context, s *session, movable bool) error {
	select {
	case w.token <- struct{}{}: // free: the usual case, with no timer
		return w.hold(s)
	default:
	}
	var patience <-chan time.Time
	if movable {
		t := time.NewTicker(w.pool.opts.BusyAfter)
		defer t.Stop()
		patience = t.C
	}
wait:
	for {
		select {
		case w.token <- struct{}{}:
			break wait
		case <-w.dead:
			return errDead
		case <-ctx.Done():
			return ctx.Err()
		case now := <-patience:
			if w.heldFor(now) >= w.pool.opts.BusyAfter && w.pool.canMove(w, now) {
				return errMove
			}
		}
	}
	return w.hold(s)
}

// hold starts s's clock once it has the token.
func (w *worker) hold(s *session) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.exited {
		<-w.token
		return errDead
	}
	w.holder, w.since = s, time.Now()
	w.gen++
	gen := w.gen
	left := w.pool.opts.EvalTimeout - s.used
	w.timer = time.AfterFunc(left, func() { w.overran(s, gen) })
	return nil
}

// holds says whether s holds the token.
func (w *worker) holds(s *session) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.holder == s
}

// release stops s's clock and frees the token, if s holds it.
func (w *worker) release(s *session) {
	w.mu.Lock()
	if w.holder != s || s == nil {
		w.mu.Unlock()
		return
	}
	s.used += time.Since(w.since)
	w.timer.Stop()
	w.holder, w.timer = nil, nil
	w.mu.Unlock()
	<-w.token
}

// overran kills the worker for s's overrun, if s still holds the token it
// took in acquisition gen.
func (w *worker) overran(s *session, gen uint64) {
	w.mu.Lock()
	if w.holder != s || w.gen != gen || w.exited {
		w.mu.Unlock()
		return
	}
	w.overrun = s
	w.mu.Unlock()
	_ = w.cmd.Process.Kill()
}

// kill kills the worker process.
func (w *worker) kill() { _ = w.cmd.Process.Kill() }

// stop kills the worker and waits until its sessions have ended.
func (w *worker) stop() {
	_ = w.cmd.Process.Kill()
	<-w.dead
}
