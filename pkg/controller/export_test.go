package controller

// Held counts what the run reconciler keeps in memory per run: journal
// copies, own-write entries and runs the waker watches objects for.
func (c *Controller) Held() (journals, ownWrites, waking int) {
	r := c.Runs
	r.init()
	waking = 0
	if r.Waker != nil {
		r.Waker.mu.Lock()
		waking = len(r.Waker.byRun)
		r.Waker.mu.Unlock()
	}
	return r.memo.Len(), r.own.len(), waking
}

// RefusedForSize is refusedForSize, for the table test against the API
// server's real answers.
var RefusedForSize = refusedForSize

// HeldCallbackRuns counts the runs whose delivered callback keys the
// delivery keeps in memory.
func (c *Controller) HeldCallbackRuns() int { return c.Runs.Callbacks.heldSent() }
