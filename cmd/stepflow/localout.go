package main

import (
	"io"
	"sync"
	"time"
)

// lineOut writes `stepflow local`'s progress lines to a writer that may
// stop taking them: a pipe whose reader is gone (`make run | tee log`,
// then Ctrl-C), a closed terminal, a reader that no longer reads. A
// goroutine does the writing, so a blocked write never holds up the
// caller; lines queue up to a bound and the rest are dropped; after the
// first failed write the writer is left alone. Shutdown thus never waits
// on its own log.
type lineOut struct {
	lines chan string
	done  chan struct{}

	mu     sync.Mutex
	closed bool
}

// lineOutQueue bounds the lines waiting for a slow writer.
const lineOutQueue = 256

func newLineOut(w io.Writer) *lineOut {
	o := &lineOut{lines: make(chan string, lineOutQueue), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		broken := false
		for line := range o.lines {
			if broken {
				continue
			}
			if _, err := io.WriteString(w, line); err != nil {
				broken = true
			}
		}
	}()
	return o
}

// Write queues p; it never blocks and never fails: what cannot be
// written is dropped.
func (o *lineOut) Write(p []byte) (int, error) {
	o.queue(string(p))
	return len(p), nil
}

func (o *lineOut) queue(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	select {
	case o.lines <- line:
	default:
	}
}

// Close stops taking lines and waits up to grace for the queued ones to
// be written.
func (o *lineOut) Close(grace time.Duration) {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.lines)
	}
	o.mu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
	}
}
