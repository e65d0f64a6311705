// Package ratelimit paces how fast things of a class start (steps of a
// type) with one token bucket per class, on an explicit clock: every call
// is given its time, so the engine that asks stays deterministic under a
// fake clock, and nothing here sleeps or blocks.
//
// A caller that is told to wait holds a reservation under its own key (a
// step attempt's id): the token it will start with is set aside for it, at
// a time the bucket works out, and asking again with the same key returns
// the time left, then go. So each waiting step wakes once, at the moment
// its token is due, instead of every waiting step racing for every token;
// and waiting steps start in the order they first asked. A key that was
// let go is remembered for a while (Grace), so the same start asked again
// (a tick repeated after its status write was lost) takes no second token.
// A reservation nobody comes back for (the run was deleted, terminated or
// suspended meanwhile) is dropped Grace after its time: its token is lost,
// which only ever makes the limit stricter.
//
// Buckets start empty, not full: the first start of a class is one
// interval (1/QPS) after the Starts was made. Nothing of a bucket is kept
// across a process restart, so an empty start is what keeps the limit
// across restarts: whatever the old process let through in the window
// before it stopped was at most what its bucket allowed, and the new one
// lets through nothing more than the rate from its own start, so every
// window spanning the restart stays within burst + QPS×window, as one
// bucket running throughout would have. The price is one interval's delay
// after each start of the controller.
package ratelimit

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Grace is how long a reservation stays valid after its time, and how long
// a start that was let go is remembered.
const Grace = time.Minute

// Limit is how fast things of one class may start: QPS on average, up to
// Burst at once (at least 1).
type Limit struct {
	QPS   float64
	Burst int
}

// String reads "2 per second, burst 1".
func (l Limit) String() string {
	return strconv.FormatFloat(l.QPS, 'f', -1, 64) + " per second, burst " + strconv.Itoa(l.Burst)
}

// Validate refuses a limit that lets nothing through.
func (l Limit) Validate() error {
	if !(l.QPS > 0) {
		return fmt.Errorf("qps %v: want a number above 0", l.QPS)
	}
	if l.Burst < 1 {
		return fmt.Errorf("burst %d: want 1 or more", l.Burst)
	}
	return nil
}

// Starts paces starts per class. Its classes are fixed when it is made; a
// class it does not limit costs a map lookup. Safe for concurrent use.
type Starts struct {
	buckets map[string]*bucket
}

type bucket struct {
	limit Limit
	desc  string
	mu    sync.Mutex
	lim   *rate.Limiter
	// held is when each key may start (reserved) or started (let go).
	held map[string]time.Time
	// order is held's keys in the order they were added, to expire them.
	order []heldKey
}

type heldKey struct {
	key string
	at  time.Time
}

// NewStarts returns a Starts limiting each class of limits, with every
// bucket empty at now. A limit that does not Validate is an error naming
// its class.
func NewStarts(limits map[string]Limit, now time.Time) (*Starts, error) {
	s := &Starts{buckets: make(map[string]*bucket, len(limits))}
	for class, l := range limits {
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("rate limit of %q: %w", class, err)
		}
		s.buckets[class] = &bucket{limit: l, desc: l.String(), lim: empty(l, now), held: map[string]time.Time{}}
	}
	return s, nil
}

// empty is a bucket of l with no token at now.
func empty(l Limit, now time.Time) *rate.Limiter {
	lim := rate.NewLimiter(rate.Limit(l.QPS), l.Burst)
	lim.AllowN(now, l.Burst) // see the package doc
	return lim
}

// Empty empties every bucket at now and forgets every key held, as a
// Starts made at now would be: for a controller that becomes the leader
// long after it started, whose buckets filled while another one led.
func (s *Starts) Empty(now time.Time) {
	for _, b := range s.buckets {
		b.mu.Lock()
		b.lim = empty(b.limit, now)
		clear(b.held)
		b.order = nil
		b.mu.Unlock()
	}
}

// Reserve asks to start key, of class, at now. A zero wait means start now;
// it took a token (or had one set aside). A positive wait means not before
// now+wait, for which a token is now set aside for key; limit then
// describes the class's limit. A class without a limit always gets zero.
func (s *Starts) Reserve(class, key string, now time.Time) (wait time.Duration, limit string) {
	b := s.buckets[class]
	if b == nil {
		return 0, ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	if at, ok := b.held[key]; ok {
		if now.Before(at) {
			return at.Sub(now), b.desc
		}
		return 0, ""
	}
	r := b.lim.ReserveN(now, 1) // always OK: burst is at least 1
	d := r.DelayFrom(now)
	at := now.Add(d)
	b.held[key] = at
	b.order = append(b.order, heldKey{key, at})
	if d <= 0 {
		return 0, ""
	}
	return d, b.desc
}

// expire forgets what was held until more than Grace before now.
func (b *bucket) expire(now time.Time) {
	cut := now.Add(-Grace)
	n := 0
	for n < len(b.order) && b.order[n].at.Before(cut) {
		if at, ok := b.held[b.order[n].key]; ok && at.Equal(b.order[n].at) {
			delete(b.held, b.order[n].key)
		}
		n++
	}
	if n > 0 {
		b.order = b.order[n:]
	}
}

// Held is how many keys the class holds (reserved or recently let go).
func (s *Starts) Held(class string) int {
	b := s.buckets[class]
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}
