package main

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckWriter blocks every write until released, as a pipe whose reader
// has stopped reading.
type stuckWriter struct{ release chan struct{} }

func (s stuckWriter) Write(p []byte) (int, error) { <-s.release; return len(p), nil }

// failingWriter fails every write, as a pipe whose reader is gone, and
// counts the attempts.
type failingWriter struct {
	mu    sync.Mutex
	tries int
}

func (f *failingWriter) Write([]byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	return 0, errors.New("write |1: broken pipe")
}

// recordingWriter keeps what it is given.
type recordingWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

// TestLineOut: `stepflow local`'s progress never holds up its shutdown,
// whatever its output does. With a writer that never returns, a
// thousand lines (more than the queue holds) and Close all return (a
// blocking Write would hang the test); with one that fails, it is tried
// once and then left alone; with one that works, every line arrives in
// order.
func TestLineOut(t *testing.T) {
	stuck := stuckWriter{release: make(chan struct{})}
	defer close(stuck.release)
	o := newLineOut(stuck)
	for i := 0; i < 4*lineOutQueue; i++ {
		if n, err := o.Write([]byte("line\n")); n != 5 || err != nil {
			t.Fatalf("Write to a stuck writer: %d, %v; want 5, nil", n, err)
		}
	}
	o.Close(10 * time.Millisecond)
	if n, err := o.Write([]byte("after close\n")); n != 12 || err != nil {
		t.Errorf("Write after Close: %d, %v; want it dropped quietly", n, err)
	}

	failing := &failingWriter{}
	o = newLineOut(failing)
	for i := 0; i < 10; i++ {
		_, _ = o.Write([]byte("line\n"))
	}
	o.Close(time.Minute)
	if failing.tries != 1 {
		t.Errorf("a failing writer was tried %d times; want once, then left alone", failing.tries)
	}

	rec := &recordingWriter{}
	o = newLineOut(rec)
	var want strings.Builder
	for _, line := range []string{"▶ starting\n", "▶ running\n", "▶ stopping the control plane\n"} {
		_, _ = o.Write([]byte(line))
		want.WriteString(line)
	}
	o.Close(time.Minute)
	if got := rec.b.String(); got != want.String() {
		t.Errorf("written %q; want %q", got, want.String())
	}
}
