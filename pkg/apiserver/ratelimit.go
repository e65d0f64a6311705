package apiserver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userLimits is a token bucket per user name: limit requests per second,
// burst at once. At most maxUsers buckets are kept; when full, those idle
// long enough to have refilled go first, else all.
type userLimits struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

const maxUsers = 10000

func newUserLimits(perSecond float64, burst int, now func() time.Time) *userLimits {
	return &userLimits{limit: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes one token from user's bucket.
func (l *userLimits) allow(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(user).AllowN(l.now(), 1)
}

// empty reports whether user's bucket has no token left, taking none.
func (l *userLimits) empty(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[user]
	return ok && b.TokensAt(l.now()) < 1
}

// bucket is user's bucket, made when it has none. Called with l.mu held.
func (l *userLimits) bucket(user string) *rate.Limiter {
	now := l.now()
	b, ok := l.buckets[user]
	if !ok {
		if len(l.buckets) >= maxUsers {
			for u, b := range l.buckets {
				if b.TokensAt(now) >= float64(l.burst) {
					delete(l.buckets, u)
				}
			}
			if len(l.buckets) >= maxUsers {
				clear(l.buckets)
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[user] = b
	}
	return b
}
