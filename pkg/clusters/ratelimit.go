package clusters

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/stepflow-dev/stepflow/pkg/ratelimit"
)

// DefaultMaxWait is how long a request to a rate-limited cluster may wait
// for its turn (Options.MaxWait's default).
const DefaultMaxWait = 10 * time.Second

// throttle paces every request the controller sends to one named cluster
// (Options.Limits): the kube ops' reads and writes, discovery, the watches
// of its cache (each watch once, when it starts) and the access reviews. It
// is kept per cluster name, so a new connection after its Secret changed
// shares it. The bucket starts empty, as the step limits' (package
// ratelimit): a restart never lets more through than the rate.
//
// A request waits for its turn in the goroutine that sends it (the op's,
// inside the step's evaluation): the op layer has no way to say "not before
// T" to the engine, so this is bounded instead. A turn more than maxWait
// away is not waited for: the request fails at once with a retryable
// RateLimitedError, and the step is retried after its backoff.
type throttle struct {
	cluster string
	limit   ratelimit.Limit
	lim     *rate.Limiter
	maxWait time.Duration
}

func newThrottle(cluster string, l ratelimit.Limit, maxWait time.Duration, now time.Time) (*throttle, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("rate limit of cluster %q: %w", cluster, err)
	}
	lim := rate.NewLimiter(rate.Limit(l.QPS), l.Burst)
	lim.AllowN(now, l.Burst) // empty
	return &throttle{cluster: cluster, limit: l, lim: lim, maxWait: maxWait}, nil
}

// wait returns once the request may go, or why it may not.
func (t *throttle) wait(ctx context.Context) error {
	r := t.lim.Reserve() // OK: burst is at least 1
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	if d > t.maxWait {
		r.Cancel()
		return &RateLimitedError{Cluster: t.cluster, Limit: t.limit.String(), Wait: d, MaxWait: t.maxWait}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// throttled sends requests through a throttle.
type throttled struct {
	t    *throttle
	next http.RoundTripper
}

func (h throttled) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := h.t.wait(req.Context()); err != nil {
		return nil, err
	}
	return h.next.RoundTrip(req)
}

// RateLimitedError is a request to a named cluster whose turn under the
// cluster's rate limit was further away than the wait allowed. It is
// retryable.
type RateLimitedError struct {
	Cluster, Limit string
	Wait, MaxWait  time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("cluster %q is rate-limited to %s: the next request may go in %v, more than the %v a request waits",
		e.Cluster, e.Limit, e.Wait.Round(time.Millisecond), e.MaxWait)
}
