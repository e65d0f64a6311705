package http

import (
	"errors"
	"sync"
	"time"
)

// ErrRateLimited is wrapped by the error of a call that request.ratelimiter
// turned away. The call was not sent; a later retry may pass.
var ErrRateLimited = errors.New("rate limited")

// pruneAbove is the number of tracked method+URL keys above which a limiter
// drops the keys whose windows have emptied.
const pruneAbove = 256

// limiter counts requests per key in a sliding window: a request is allowed
// when fewer than limit requests were allowed in the period before it. It
// never blocks.
type limiter struct {
	now func() time.Time

	mu      sync.Mutex
	windows map[string]*window
}

// window holds the times of the requests allowed within the last period,
// oldest first.
type window struct {
	period time.Duration
	hits   []time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, windows: map[string]*window{}}
}

// allow reports whether one more request under key fits in limit per period,
// and counts it if so. The limit and period are the caller's: a template that
// changes them changes them for the key from then on.
func (l *limiter) allow(key string, limit int, period time.Duration) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()

	w, ok := l.windows[key]
	if !ok {
		if len(l.windows) >= pruneAbove {
			l.prune(now)
		}
		w = &window{}
		l.windows[key] = w
	}
	w.period = period
	w.expire(now)
	if len(w.hits) >= limit {
		return false
	}
	w.hits = append(w.hits, now)
	return true
}

// expire drops the hits that are a period or more old.
func (w *window) expire(now time.Time) {
	cutoff := now.Add(-w.period)
	i := 0
	for i < len(w.hits) && !w.hits[i].After(cutoff) {
		i++
	}
	w.hits = w.hits[i:]
}

// prune forgets the keys with no hit left in their window.
func (l *limiter) prune(now time.Time) {
	for key, w := range l.windows {
		w.expire(now)
		if len(w.hits) == 0 {
			delete(l.windows, key)
		}
	}
}
